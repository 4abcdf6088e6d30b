"""Rule draw_detection_grid: ground truth and each variant's boxes, side by side."""

from retinaflow.plots import detection_grid
from retinaflow.scripting import config_keys, job_logging

with job_logging(snakemake.log[0], settings=config_keys(snakemake.config, "report")) as log:
    p = snakemake.params
    ids = detection_grid(
        snakemake.input.annotations,
        snakemake.input.images,
        dict(zip(p.variants, snakemake.input.detections, strict=True)),
        count=p.images,
        seed=p.seed,
        min_score=p.min_score,
        path=snakemake.output[0],
    )
    log.info("drew images %s for %s", ids, ", ".join(p.variants))
