"""Rule sample_calibration: calibration.count images of the evaluation split, seeded."""

from retinaflow.calibration import sample_calibration_list, write_calibration_list
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0]) as log:
    p = snakemake.params
    names = sample_calibration_list(snakemake.input.annotations, p.num_images, p.seed)
    write_calibration_list(names, snakemake.output[0])
    log.info("calibration list: %d images (seed %d)", len(names), p.seed)
