"""retinaflow: the MLPerf Inference RetinaNet benchmark as a DAG of file-dependent steps.

snakemake --cores 2 --configfile config/demo.yaml results/map_onnx.json
"""


configfile: "config/demo.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/score.smk"


rule all:
    default_target: True
    input:
        expand("results/map_{variant}.json", variant=VARIANTS),
