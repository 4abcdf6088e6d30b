"""Rule plot_accuracy: mAP per variant with the 99% gate, PR curves, per-class AP, the table."""

from retinaflow.plots import accuracy_figures
from retinaflow.scripting import config_keys, job_logging

with job_logging(snakemake.log[0], settings=config_keys(snakemake.config, "report")) as log:
    p = snakemake.params
    worst = accuracy_figures(
        snakemake.input.summary,
        dict(zip(p.variants, snakemake.input.arrays, strict=True)),
        snakemake.input.annotations,
        classes=p.classes,
        out=snakemake.output,
    )
    for name, drop in worst:
        log.info("class %s: largest int8 AP drop %+.4f", name, -drop)
