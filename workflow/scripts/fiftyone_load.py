"""Rule fiftyone_load: the persistent FiftyOne dataset, FiftyOne's mAP against pycocotools'."""

import os

os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")

from retinaflow.fiftyone_results import load_and_evaluate  # noqa: E402
from retinaflow.scripting import job_logging  # noqa: E402

with job_logging(snakemake.log[0]) as log:
    p = snakemake.params
    record = load_and_evaluate(
        p.name,
        snakemake.input.annotations,
        snakemake.input.images,
        dict(zip(p.variants, snakemake.input.detections, strict=True)),
        dict(zip(p.variants, snakemake.input.maps, strict=True)),
        max_detections=p.max_detections,
        out_path=snakemake.output.json,
        html_path=snakemake.output.table,
    )
    for variant, m in record["variants"].items():
        log.info(
            "%s: FiftyOne mAP %.6f, pycocotools %.6f (%+.2e)",
            variant,
            m["mAP"],
            m["pycocotools_mAP"],
            m["difference"],
        )
    log.info("dataset %s in %s; open it: %s", p.name, record["database_dir"], record["open_app"])
