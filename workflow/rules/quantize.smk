# Quantization: the QDQ int8 ONNX of one calibration method (onnxruntime.quantization), and
# the torch-int8 build (the checkpoint with its calibrated activation ranges).


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


rule quantize_torch_head:
    input:
        **calibration_files(),
        weights="models/{model}/weights.pt",
        # for the guard: the calibration list must share no image with the scored split
        evaluation=dataset_files()["annotations"],
    output:
        build="models/{model}/torch-int8.pt",
        record="models/{model}/torch-int8.json",
    log:
        "logs/quantize/{model}-torch-int8.log",
    benchmark:
        "benchmarks/quantize/{model}-torch-int8.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("quantize"),
    params:
        model=model_params(),
        resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
        device=lookup(within=config, dpath="infer/device"),
        batch_size=lookup(within=config, dpath="infer/batch_size"),
        calibration=calibration_description(),
        # model/int8_head.BUILD_FORMAT: a build of an older format is stale (params changed)
        build_format="retinaflow-torch-int8/2",
    script:
        "../scripts/quantize_torch_head.py"
