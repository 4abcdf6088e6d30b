# Speed: the heads of the summary's variants, timed side by side (the summary's speed column).


rule measure_speed:
    # every summary variant's head, timed interleaved in one process (results/speed.json)
    input:
        **dataset_files(),
        runtimes=[variant_artifact(v) for v in VARIANTS],
        metas=expand(
            "builds/{model}/{build}/meta.json", model=MODEL, build=tvm_builds()
        ),
    output:
        "results/speed.json",
    log:
        "logs/speed/speed.log",
    benchmark:
        "benchmarks/speed/speed.tsv"
    conda:
        "../../envs/tvm.yaml"
    threads: lookup(within=config, dpath="speed/threads")
    resources:
        mem_mb=mem_mb("speed"),
    params:
        variants=VARIANTS,
        tvm_builds=tvm_builds(),
        model=model_params(),
        resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
        batch=lookup(within=config, dpath="compile/batch"),
        # the record holds the threads and rounds it was timed with: a change reruns it
        threads=lookup(within=config, dpath="speed/threads"),
        rounds=lookup(within=config, dpath="speed/rounds"),
        warmup=lookup(within=config, dpath="speed/warmup"),
        images=lookup(within=config, dpath="speed/images"),
        torch=lookup(within=config, dpath="pytorch"),
    script:
        "../scripts/measure_speed.py"
