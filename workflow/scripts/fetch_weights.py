"""Rule fetch_weights: a local checkpoint, or the zenodo download (md5-checked, cached), checked
against the architecture and stored as a plain state dict."""

from pathlib import Path

from retinaflow.data.weights import fetch_weights
from retinaflow.model.loading import store_weights
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "model.weights", "model")
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    p = snakemake.params
    if p.source == "local":
        checkpoint = snakemake.input[0]
    else:
        name = p.url.rstrip("/").rsplit("/", 1)[-1]
        checkpoint = fetch_weights(Path(p.cache) / name, url=p.url, md5=p.md5)
    store_weights(checkpoint, snakemake.output[0], **p.model)
    log.info("weights %s fit %s", checkpoint, p.model)
