"""Rule export_head: the truncated forward (10 head maps) to ONNX."""

from retinaflow.export import export_head_onnx
from retinaflow.model.loading import load_head
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "model")
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    model = snakemake.params.model
    head = load_head(snakemake.input.weights, **model)
    export_head_onnx(head, snakemake.output[0], model["image_size"], snakemake.params.opset)
    log.info("exported %s", snakemake.output[0])
