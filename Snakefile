"""retinaflow: the MLPerf Inference RetinaNet benchmark as a DAG of file-dependent steps.

    snakemake --cores 8 results/map_onnx.json                                # the real benchmark
    snakemake --cores 2 results/map_onnx.json --configfile config/demo.yaml  # the offline demo

config/config.yaml holds every setting and its default (the only place defaults live); a
--configfile is merged over it and holds only what differs.
"""

import os
import sys
import time

from retinaflow.scripting import user_errors

START = time.time()


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# The Snakemake report's front page (snakemake --report results/report.html report_all)
report: "workflow/report/workflow.rst"


# One rule file per stage, in DAG order (the stage table: README.md, Architecture).
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/quantize.smk"
include: "workflow/rules/compile.smk"
include: "workflow/rules/fidelity.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/speed.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/perf.smk"
include: "workflow/rules/report.smk"


onerror:
    # A job's user error is in its log and mid-way through Snakemake's output: repeat it last.
    for message in user_errors("logs", START):
        print(f"retinaflow error: {message}", file=sys.stderr)


rule all:
    default_target: True
    input:
        "results/summary.md",
        "results/speed.json",
        expand(
            "builds/{model}/{build}/fidelity.json",
            model=MODEL,
            build=[v for v in VARIANTS if v in TVM_VARIANTS],
        ),


rule perf_all:
    input:
        expand(
            "results/perf_{variant}_{scenario}.json",
            variant=VARIANTS,
            scenario=SCENARIOS,
        ),
        expand("results/map_loadgen_{variant}.json", variant=VARIANTS),
