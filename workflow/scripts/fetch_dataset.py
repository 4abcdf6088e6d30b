"""Rule fetch_dataset: the OpenImages MLPerf set (direct | fiftyone | local) in the DAG layout."""

from retinaflow.data.openimages.prepare import prepare_openimages
from retinaflow.data.openimages.settings import DownloadSettings, OpenImagesSettings, SourceUrls
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "dataset")
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    p = snakemake.params
    settings = OpenImagesSettings(
        source=p.source,
        cache_root=p.cache_root,
        local_root=p.local_root,
        zoo_dir=p.zoo_dir,
        urls=SourceUrls.from_config(p.urls),
        download=DownloadSettings.from_config(p.download),
        max_images=p.max_images,
        seed=p.seed,
    )
    out = snakemake.output
    count = prepare_openimages("validation", settings, out.annotations, out.images)
    log.info("dataset (%s): %d images in %s", p.source, count, out.images)
