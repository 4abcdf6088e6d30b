"""Rule make_demo_calibration: the demo's calibration split (its own seed, never the
evaluation split's), its json and images in the DAG layout, and the list file quantize reads."""

from pathlib import Path

from retinaflow.calibration import write_calibration_list
from retinaflow.data.demo import make_demo_dataset
from retinaflow.io import read_json
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0], snakemake.threads) as log:
    p = snakemake.params
    out = snakemake.output
    root = Path(out.annotations).parent
    make_demo_dataset(root, "calibration", p.num_images, p.seed)
    names = sorted(img["file_name"] for img in read_json(out.annotations)["images"])
    write_calibration_list(names, out.names)
    log.info("demo calibration split: %d images (seed %d) in %s", len(names), p.seed, root)
