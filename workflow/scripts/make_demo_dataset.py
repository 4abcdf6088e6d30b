"""Rule make_demo_dataset: the synthetic evaluation split of the offline demo."""

from pathlib import Path

from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0], snakemake.threads) as log:
    root = Path(snakemake.output.annotations).parent
    make_demo_dataset(root, "val", snakemake.params.num_images, snakemake.params.seed)
    log.info("wrote %d demo images to %s", snakemake.params.num_images, root)
