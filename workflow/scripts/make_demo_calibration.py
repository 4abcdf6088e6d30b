"""Rule make_demo_calibration: the demo's calibration split (its own seed, never the
evaluation split's), its json and images in the DAG layout, and the list file quantize reads."""

from pathlib import Path

from retinaflow.demo.dataset import make_demo_calibration
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0], snakemake.threads) as log:
    p = snakemake.params
    out = snakemake.output
    root = Path(out.annotations).parent
    names = make_demo_calibration(root, p.num_images, p.seed, out.names)
    log.info("demo calibration split: %d images (seed %d) in %s", len(names), p.seed, root)
