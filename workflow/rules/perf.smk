# LoadGen scenarios of every build: performance runs per scenario, one accuracy run (Offline:
# batched, and the accuracy log does not depend on the scenario) and its MLPerf-style scoring.
rule run_loadgen:
    input:
        **dataset_files(),
        runtime=runtime_input,
    output:
        json="results/perf_{variant}_{scenario}.json",
        logs=directory("results/loadgen/{variant}/{scenario}"),
    log:
        "logs/perf/{variant}-{scenario}.log",
    benchmark:
        "benchmarks/perf/{variant}-{scenario}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: lookup(within=config, dpath="perf/threads")
    resources:
        mem_mb=mem_mb("infer"),
    params:
        model=model_params(),
        mode="PerformanceOnly",
        scenario="{scenario}",
        log_dir="results/loadgen/{variant}/{scenario}",
        settings=lookup(within=config, dpath="perf/scenarios/{scenario}"),
        batch_size=lookup(within=config, dpath="perf/batch_size"),
        workers=lookup(within=config, dpath="perf/workers"),
        batch_wait_ms=lookup(within=config, dpath="perf/batch_wait_ms"),
        performance_sample_count=lookup(
            within=config, dpath="perf/performance_sample_count"
        ),
        resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
        postprocess=lookup(within=config, dpath="postprocess"),
        device=lookup(within=config, dpath="infer/device"),
        torch=torch_settings,
        # the record is a timing at this thread count: a change reruns the test
        threads=lookup(within=config, dpath="perf/threads"),
    script:
        "../scripts/run_loadgen.py"


rule run_loadgen_accuracy:
    input:
        **dataset_files(),
        runtime=runtime_input,
    output:
        accuracy="results/loadgen/{variant}/accuracy/mlperf_log_accuracy.json",
        json="results/loadgen/{variant}/accuracy/run.json",
    log:
        "logs/perf/{variant}-accuracy.log",
    benchmark:
        "benchmarks/perf/{variant}-accuracy.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: lookup(within=config, dpath="perf/threads")
    resources:
        mem_mb=mem_mb("infer"),
    params:
        model=model_params(),
        mode="AccuracyOnly",
        scenario="Offline",
        log_dir="results/loadgen/{variant}/accuracy",
        settings={},  # LoadGen answers every sample once whatever the durations
        batch_size=lookup(within=config, dpath="perf/batch_size"),
        workers=lookup(within=config, dpath="perf/workers"),
        batch_wait_ms=lookup(within=config, dpath="perf/batch_wait_ms"),
        performance_sample_count=lookup(
            within=config, dpath="perf/performance_sample_count"
        ),
        resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
        postprocess=lookup(within=config, dpath="postprocess"),
        device=lookup(within=config, dpath="infer/device"),
        torch=torch_settings,
        # the record is a timing at this thread count: a change reruns the test
        threads=lookup(within=config, dpath="perf/threads"),
    script:
        "../scripts/run_loadgen.py"


rule score_loadgen_accuracy:
    input:
        accuracy="results/loadgen/{variant}/accuracy/mlperf_log_accuracy.json",
        annotations=dataset_files()["annotations"],
    output:
        "results/map_loadgen_{variant}.json",
    log:
        "logs/score/loadgen-{variant}.log",
    benchmark:
        "benchmarks/score/loadgen-{variant}.tsv"
    conda:
        "../../envs/score.yaml"
    resources:
        mem_mb=mem_mb("score"),
    params:
        max_detections=lookup(within=config, dpath="score/max_detections"),
    script:
        "../scripts/score_loadgen_accuracy.py"
