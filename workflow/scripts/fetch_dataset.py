"""Rule fetch_dataset: the OpenImages MLPerf set (direct | fiftyone | local) in the DAG layout."""

from retinaflow.data.sources import prepare_openimages
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0], snakemake.threads) as log:
    p = snakemake.params
    count = prepare_openimages(
        p.source,
        snakemake.output.annotations,
        snakemake.output.images,
        cache_root=p.cache_root,
        local_root=p.local_root,
        max_images=p.max_images,
        seed=p.seed,
        urls=p.urls,
        zoo_dir=p.zoo_dir,
        download=p.download,
    )
    log.info("dataset (%s): %d images in %s", p.source, count, snakemake.output.images)
