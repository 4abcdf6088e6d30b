# Fidelity: a TVM build's 10 head maps against ONNX Runtime fp32 on the calibration images
# (a gate: a build past fidelity.min_cosine fails).


rule measure_fidelity:
    input:
        **calibration_files(),
        library="builds/{model}/{build}/module.so",
        reference="models/{model}/head.sim.onnx",
    output:
        "builds/{model}/{build}/fidelity.json",
    log:
        "logs/fidelity/{model}-{build}.log",
    benchmark:
        "benchmarks/fidelity/{model}-{build}.tsv"
    conda:
        "../../envs/tvm.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("infer"),
    params:
        image_size=lookup(within=config, dpath="model/image_size"),
        resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
        batch=lookup(within=config, dpath="compile/batch"),
        max_images=lookup(within=config, dpath="fidelity/max_images"),
        precision=lambda wildcards: precision(wildcards.build),
        min_cosine=lambda wildcards: config["fidelity"]["min_cosine"][
            precision(wildcards.build)
        ],
    script:
        "../scripts/measure_fidelity.py"
