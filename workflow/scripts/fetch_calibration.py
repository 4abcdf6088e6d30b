"""Rule fetch_calibration: MLPerf's 500-image calibration list (TRAIN split), its json and its
images in the DAG layout, and the list file the quantize rule reads."""

from retinaflow.calibration import write_calibration_list
from retinaflow.data.openimages.prepare import prepare_openimages
from retinaflow.data.openimages.settings import DownloadSettings, OpenImagesSettings, SourceUrls
from retinaflow.io import read_json
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "calibration.fetch")
with job_logging(snakemake.log[0], settings=settings) as log:
    p = snakemake.params
    out = snakemake.output
    settings = OpenImagesSettings(
        source=p.source,
        cache_root=p.cache_root,
        local_root=p.local_root,
        zoo_dir=p.zoo_dir,
        urls=SourceUrls.from_config(p.urls),
        download=DownloadSettings.from_config(p.download),
    )
    prepare_openimages("calibration", settings, out.annotations, out.images)
    names = sorted(img["file_name"] for img in read_json(out.annotations)["images"])
    write_calibration_list(names, out.names)
    log.info("MLPerf calibration set: %d images", len(names))
