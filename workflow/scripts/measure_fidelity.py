"""Rule measure_fidelity: a build's 10 head maps against ONNX Runtime fp32, calibration images.
A build whose maps drift past fidelity.min_cosine.<precision> fails with the figures and
leaves no fidelity.json."""

from retinaflow.calibration import read_calibration_list
from retinaflow.fidelity import check_fidelity, fidelity_of_build
from retinaflow.io import write_json
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(
    snakemake.config,
    min_cosine=f"fidelity.min_cosine.{snakemake.params.precision}",
    calibration_source="calibration.source",
)
with job_logging(snakemake.log[0], settings=settings) as log:
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
    checked = check_fidelity(record, p.min_cosine)  # past the limit: no file says it passed
    checked["limit"]["config_key"] = settings("min_cosine")
    write_json(snakemake.output[0], checked)
