rule summarize_variants:
    input:
        maps=expand("results/map_{variant}.json", variant=VARIANTS),
        metas=expand(
            "builds/{model}/{build}/meta.json",
            model=MODEL,
            build=[v for v in VARIANTS if v in TVM_VARIANTS],
        ),
        quantize=sorted(set(quantize_records().values())),
    output:
        markdown=report("results/summary.md", category="Accuracy"),
        table="results/summary.csv",
    log:
        "logs/report/summary.log",
    conda:
        "../../envs/score.yaml"
    params:
        variants=VARIANTS,
        tvm_variants=TVM_VARIANTS,
        quantize_records=quantize_records(),
    script:
        "../scripts/summarize_variants.py"
