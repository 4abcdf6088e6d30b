"""Rule infer: preprocess -> runtime of the variant -> host post-processing -> detections."""

from retinaflow.infer import infer_variant
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "infer", "preprocess", "model")
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    stats = infer_variant(
        variant=snakemake.wildcards.variant,
        runtime_path=snakemake.input.runtime,
        annotations=snakemake.input.annotations,
        image_dir=snakemake.input.images,
        outputs=dict(snakemake.output),
        model=snakemake.params.model,
        resize_kernel=snakemake.params.resize_kernel,
        decode=snakemake.params.decode,
        postprocess=snakemake.params.postprocess,
        batch_size=snakemake.params.batch_size,
        device=snakemake.params.device,
        threads=snakemake.threads,
        draw_images=snakemake.params.draw_images,
        draw_min_score=snakemake.params.draw_min_score,
        torch_settings=snakemake.params.torch,
        workers=snakemake.params.workers,
    )
    log.info("%s: %s", snakemake.wildcards.variant, stats)
