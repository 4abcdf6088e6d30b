# Calibration: the images quantization calibrates on, a split of their own (the demo's
# generator, or MLPerf's 500 train-split images), never a scored one.


rule make_demo_calibration:
    output:
        annotations="data/{dataset}/calibration/demo/annotations.json",
        images=directory("data/{dataset}/calibration/demo/images"),
        names="data/{dataset}/calibration/demo.txt",
    log:
        "logs/calibration/{dataset}-demo.log",
    benchmark:
        "benchmarks/calibration/{dataset}-demo.tsv"
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=mem_mb("data"),
    params:
        num_images=lookup(within=config, dpath="calibration/count"),
        seed=lookup(within=config, dpath="calibration/seed"),
    script:
        "../scripts/make_demo_calibration.py"


rule fetch_calibration:
    output:
        annotations="data/{dataset}/calibration/mlperf/annotations.json",
        images=directory("data/{dataset}/calibration/mlperf/images"),
        names="data/{dataset}/calibration/mlperf.txt",
    log:
        "logs/calibration/{dataset}-mlperf.log",
    benchmark:
        "benchmarks/calibration/{dataset}-mlperf.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("data"),
    params:
        source=lookup(within=config, dpath="calibration/fetch/source"),
        local_root=lookup(within=config, dpath="calibration/fetch/local_root"),
        zoo_dir=lookup(within=config, dpath="calibration/fetch/zoo_dir"),
        cache_root=lookup(within=config, dpath="calibration/fetch/cache"),
        urls=lookup(within=config, dpath="calibration/fetch/urls"),
        download=lookup(within=config, dpath="dataset/download"),
    script:
        "../scripts/fetch_calibration.py"
