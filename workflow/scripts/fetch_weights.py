"""Rule fetch_weights: check a local checkpoint against the architecture and store it."""

from retinaflow.model.loading import store_weights
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0]) as log:
    store_weights(snakemake.input[0], snakemake.output[0], **snakemake.params.model)
    log.info("weights %s fit %s", snakemake.input[0], snakemake.params.model)
