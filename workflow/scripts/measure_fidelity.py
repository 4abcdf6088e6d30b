"""Rule measure_fidelity: a build's 10 head maps against ONNX Runtime fp32, calibration images."""

from retinaflow.calibration import read_calibration_list
from retinaflow.fidelity import fidelity_of_build
from retinaflow.io import write_json
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0]) as log:
    p = snakemake.params
    images = read_calibration_list(snakemake.input.calibration, snakemake.input.calibration_images)
    images = images[: p.max_images]
    record = fidelity_of_build(
        snakemake.input.library,
        snakemake.input.reference,
        images,
        p.image_size,
        resize_kernel=p.resize_kernel,
        batch_size=p.batch,
        threads=snakemake.threads,
    )
    write_json(snakemake.output[0], record)
    log.info("fidelity: min cosine %.6f, max rel %.3g", record["cosine_min"], record["max_rel"])
