# Summary: one table of every variant (mAP, MLPerf's 99% gate, calibration, speed).


rule summarize_variants:
    input:
        maps=expand("results/map_{variant}.json", variant=VARIANTS),
        metas=expand(
            "builds/{model}/{build}/meta.json", model=MODEL, build=tvm_builds()
        ),
        quantize=sorted(set(quantize_records().values())),
        speed="results/speed.json",
    output:
        markdown=report("results/summary.md", category="1. Accuracy"),
        table="results/summary.csv",
    log:
        "logs/report/summary.log",
    benchmark:
        "benchmarks/report/summary.tsv"
    conda:
        "../../envs/score.yaml"
    params:
        variants=VARIANTS,
        tvm_variants=TVM_VARIANTS,
        quantize_records=quantize_records(),
    script:
        "../scripts/summarize_variants.py"
