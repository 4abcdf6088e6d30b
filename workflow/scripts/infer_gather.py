"""Rule infer_gather: the shards' detections, in shard order -> rule infer's outputs."""

from retinaflow.infer import gather_shards
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0], snakemake.threads) as log:
    stats = gather_shards(
        detections=list(snakemake.input.detections),
        stats=list(snakemake.input.stats),
        annotations=snakemake.input.annotations,
        image_dir=snakemake.input.images,
        outputs=dict(snakemake.output),
        batch_size=snakemake.params.batch_size,
        draw_images=snakemake.params.draw_images,
        draw_min_score=snakemake.params.draw_min_score,
    )
    log.info("%s: %s", snakemake.wildcards.variant, stats)
