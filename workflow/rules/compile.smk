# TVM: the MetaSchedule tuning database of a precision (tune_head) and the builds compiled
# with it (compile_head).


rule tune_head:
    # one MetaSchedule database per (model, precision), shared by all its builds
    input:
        onnx=tuning_onnx,
    output:
        directory("builds/{model}/tuning-{precision}"),
    log:
        "logs/tune/{model}-{precision}.log",
    benchmark:
        "benchmarks/tune/{model}-{precision}.tsv"
    conda:
        "../../envs/tvm.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("compile"),
    params:
        precision=lambda wildcards: wildcards.precision,
        target=lookup(within=config, dpath="compile/target"),
        input_shape=build_input_shape(),
        fp16_accumulate=lookup(within=config, dpath="compile/fp16_accumulate"),
        trials_per_task=lookup(within=config, dpath="compile/tuning/trials_per_task"),
        tasks=lookup(within=config, dpath="compile/tuning/tasks"),
        shipped=lookup(within=config, dpath="compile/tuning/shipped"),
        shipped_digest=shipped_tuning_digest,
        model=lambda wildcards: wildcards.model,
        trials_per_iter=lookup(within=config, dpath="compile/tuning/trials_per_iter"),
        seed=lookup(within=config, dpath="compile/tuning/seed"),
    script:
        "../scripts/tune_head.py"


rule compile_head:
    input:
        onnx=build_onnx,
        tuning=tuning_dir,
    output:
        library="builds/{model}/{build}/module.so",
        meta="builds/{model}/{build}/meta.json",
    log:
        "logs/compile/{model}-{build}.log",
    benchmark:
        "benchmarks/compile/{model}-{build}.tsv"
    conda:
        "../../envs/tvm.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("compile"),
    params:
        precision=lambda wildcards: precision(wildcards.build),
        target=lookup(within=config, dpath="compile/target"),
        input_shape=build_input_shape(),
        fp16_accumulate=lookup(within=config, dpath="compile/fp16_accumulate"),
    script:
        "../scripts/compile_head.py"
