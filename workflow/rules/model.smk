# Model: the checkpoint (fetch_weights) and its head, exported to ONNX and simplified.


rule fetch_weights:
    input:
        weights_input(),
    output:
        "models/{model}/weights.pt",
    log:
        "logs/model/{model}-weights.log",
    benchmark:
        "benchmarks/model/{model}-weights.tsv"
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=mem_mb("weights"),
    params:
        model=model_params(),
        source=lookup(within=config, dpath="model/weights/source"),
        url=lookup(within=config, dpath="model/weights/url"),
        md5=lookup(within=config, dpath="model/weights/md5"),
        cache=lookup(within=config, dpath="model/weights/cache"),
    script:
        "../scripts/fetch_weights.py"


rule export_head:
    input:
        weights="models/{model}/weights.pt",
    output:
        "models/{model}/head.onnx",
    log:
        "logs/model/{model}-export.log",
    benchmark:
        "benchmarks/model/{model}-export.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("export"),
    params:
        model=model_params(),
        opset=lookup(within=config, dpath="export/opset"),
    script:
        "../scripts/export_head.py"


rule simplify_head:
    input:
        **dataset_files(),
        onnx="models/{model}/head.onnx",
        weights="models/{model}/weights.pt",
    output:
        onnx="models/{model}/head.sim.onnx",
        parity="models/{model}/parity.json",
    log:
        "logs/model/{model}-simplify.log",
    benchmark:
        "benchmarks/model/{model}-simplify.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("simplify"),
    params:
        model=model_params(),
        parity_images=lookup(within=config, dpath="export/parity_images"),
        parity_max_rel=lookup(within=config, dpath="export/parity_max_rel"),
    script:
        "../scripts/simplify_head.py"
