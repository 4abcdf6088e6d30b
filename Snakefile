"""retinaflow: the MLPerf Inference RetinaNet benchmark as a DAG of file-dependent steps.

    snakemake --cores 8 results/map_onnx.json                                # the real benchmark
    snakemake --cores 2 --configfile config/demo.yaml results/map_onnx.json  # the offline demo

config/config.yaml is the default; a --configfile is merged over it.
"""

import os


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/score.smk"


rule all:
    default_target: True
    input:
        expand("results/map_{variant}.json", variant=VARIANTS),
