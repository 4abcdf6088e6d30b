"""Rule plot_speed: LoadGen's latency percentiles per variant and scenario, the head's speed."""

from retinaflow.plots import speed_figures
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0]) as log:
    keys = [tuple(k.split("/")) for k in snakemake.params.records]
    speed_figures(
        dict(zip(keys, snakemake.input.perf, strict=True)),
        snakemake.input.speed,
        out=snakemake.output,
    )
    log.info("plotted %d LoadGen records and %s", len(keys), snakemake.input.speed)
