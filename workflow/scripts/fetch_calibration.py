"""Rule fetch_calibration: MLPerf's 500-image calibration list (TRAIN split), its json and its
images in the DAG layout, and the list file the quantize rule reads."""

from retinaflow.calibration import write_calibration_list
from retinaflow.data.sources import prepare_openimages
from retinaflow.io import read_json
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0]) as log:
    p = snakemake.params
    out = snakemake.output
    prepare_openimages(
        p.source,
        out.annotations,
        out.images,
        layout="calibration",
        cache_root=p.cache_root,
        local_root=p.local_root,
        urls=p.urls,
        zoo_dir=p.zoo_dir,
        download=p.download,
        config_prefix="calibration.fetch",
    )
    names = sorted(img["file_name"] for img in read_json(out.annotations)["images"])
    write_calibration_list(names, out.names)
    log.info("MLPerf calibration set: %d images", len(names))
