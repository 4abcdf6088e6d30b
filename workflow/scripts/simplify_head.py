"""Rule simplify_head: onnxsim, then the parity record against PyTorch on real images."""

from retinaflow.export import parity_on_dataset, simplify_onnx
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "model", max_rel="export.parity_max_rel")
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    simplify_onnx(snakemake.input.onnx, snakemake.output.onnx)
    record = parity_on_dataset(
        snakemake.input.weights,
        snakemake.params.model,
        snakemake.output.onnx,
        snakemake.input.annotations,
        snakemake.input.images,
        snakemake.output.parity,
        num_images=snakemake.params.parity_images,
        max_rel=snakemake.params.parity_max_rel,
        threads=snakemake.threads,
    )
    log.info(
        "parity: worst max_rel %.3g (limit %.3g)",
        record["worst_max_rel"],
        record["tolerance_max_rel"],
    )
