# Inference: a variant's artifact on the evaluation split -> detections (preds/).


rule infer:
    input:
        **dataset_files(),
        runtime=runtime_input,
    output:
        detections="preds/{model}/{variant}/detections.json",
        txt=directory("preds/{model}/{variant}/txt"),
        drawn=directory("preds/{model}/{variant}/drawn"),
        stats="preds/{model}/{variant}/stats.json",
    log:
        "logs/infer/{model}-{variant}.log",
    benchmark:
        "benchmarks/infer/{model}-{variant}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: lookup(within=config, dpath="infer/threads")
    resources:
        mem_mb=mem_mb("infer"),
    params:
        model=model_params(),
        resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
        decode=lookup(within=config, dpath="preprocess/decode"),
        postprocess=lookup(within=config, dpath="postprocess"),
        batch_size=infer_batch_size,
        device=lookup(within=config, dpath="infer/device"),
        # stats.json records the threads and the speed they give: a change reruns the job
        threads=lookup(within=config, dpath="infer/threads"),
        draw_images=lookup(within=config, dpath="infer/draw_images"),
        draw_min_score=lookup(within=config, dpath="infer/draw_min_score"),
        torch=torch_settings,
    script:
        "../scripts/infer.py"
