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


rule quantize_head:
    input:
        **calibration_files(),
        onnx="models/{model}/head.sim.onnx",
        # for the guard: the calibration list must share no image with the scored split
        evaluation=dataset_files()["annotations"],
    output:
        onnx="models/{model}/head.int8-{method}.onnx",
        record="models/{model}/head.int8-{method}.json",
    log:
        "logs/quantize/{model}-{method}.log",
    benchmark:
        "benchmarks/quantize/{model}-{method}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("quantize"),
    params:
        image_size=lookup(within=config, dpath="model/image_size"),
        resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
        per_channel=lookup(within=config, dpath="quantize/per_channel"),
        activation_type=lookup(within=config, dpath="quantize/activation_type"),
        percentile=lookup(within=config, dpath="quantize/percentile"),
        histogram_bins=lookup(within=config, dpath="quantize/histogram_bins"),
        calibration=calibration_description(),
    script:
        "../scripts/quantize_head.py"
