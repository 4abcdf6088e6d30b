"""Rule measure_fidelity: a build's 10 head maps against ONNX Runtime fp32, calibration images.
A build whose maps drift past fidelity.min_cosine.<precision> fails with the figures and
leaves no fidelity.json."""

from retinaflow.calibration import read_calibration_list
from retinaflow.fidelity import fidelity_of_build, write_fidelity
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
        variant=snakemake.wildcards.build,
    )
    log.info("fidelity: min cosine %.6f, max rel %.3g", record["cosine_min"], record["max_rel"])
    write_fidelity(snakemake.output[0], record, p.min_cosine, p.precision)
