"""Rule infer_shard: one shard ({scatteritem} = i-of-n) of rule infer's images -> its
detections (.npz) and stats."""

from retinaflow.infer import infer_shard
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "infer", "preprocess", "model")
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    stats = infer_shard(
        variant=snakemake.wildcards.variant,
        runtime_path=snakemake.input.runtime,
        annotations=snakemake.input.annotations,
        image_dir=snakemake.input.images,
        shard=snakemake.wildcards.scatteritem,
        outputs=dict(snakemake.output),
        model=snakemake.params.model,
        resize_kernel=snakemake.params.resize_kernel,
        decode=snakemake.params.decode,
        postprocess=snakemake.params.postprocess,
        batch_size=snakemake.params.batch_size,
        device=snakemake.params.device,
        threads=snakemake.threads,
        torch_settings=snakemake.params.torch,
        workers=snakemake.params.workers,
    )
    log.info("%s %s: %s", snakemake.wildcards.variant, snakemake.wildcards.scatteritem, stats)
