"""Rule plot_stage_times: every job's time and memory from its Snakemake benchmark file."""

from retinaflow.plots import stage_times
from retinaflow.scripting import job_logging

with job_logging(snakemake.log[0]) as log:
    jobs = stage_times(snakemake.params.root, snakemake.output[0])
    log.info("plotted %d benchmark files, %.0f s in all", len(jobs), sum(j["s"] for j in jobs))
