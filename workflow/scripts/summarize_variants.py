"""Rule summarize_variants: results/summary.md and .csv, the MLPerf 99% gate per variant."""

from pathlib import Path

from retinaflow.scripting import job_logging
from retinaflow.summary import write_summary

with job_logging(snakemake.log[0]) as log:
    p = snakemake.params
    maps = dict(zip(p.variants, snakemake.input.maps, strict=True))
    metas = {Path(m).parent.name: m for m in snakemake.input.metas}
    rows = write_summary(
        maps,
        snakemake.output.markdown,
        snakemake.output.table,
        metas,
        p.quantize_records,
        speed_file=snakemake.input.speed,
    )
    for row in rows:
        log.info(
            "%s AP %.4f gate %s%s%s",
            row["variant"],
            row["AP"],
            row["gate"],
            f" calibration {row['calibration']}" if row["calibration"] else "",
            f" speed {row['speed']}" if row["speed"] else "",
        )
