"""Rule compile_head: TVM Relax build of one variant -> self-contained module.so + meta.json."""

from retinaflow.compile import compile_head
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "compile")
with job_logging(snakemake.log[0], settings=settings) as log:
    p = snakemake.params
    meta = compile_head(
        snakemake.input.onnx,
        snakemake.output.library,
        snakemake.output.meta,
        target=p.target,
        precision=p.precision,
        input_shape=p.input_shape,
        tuning_dir=snakemake.input.tuning,
        fp16_accumulate=p.fp16_accumulate,
    )
    log.info("built %s in %.1f s", snakemake.output.library, meta.get("compile_seconds", 0))
