# Inference: a variant's artifact on the evaluation split -> detections (preds/).
#
# infer.shards: 1 is one job, rule infer. N > 1 splits the images into N contiguous ranges
# of whole batches (retinaflow.shards), one infer_shard job each (a SLURM job each under profiles/slurm), and
# infer_gather writes from their detections the files rule infer writes, byte for byte
# (stats.json: the shards' records merged), so score and summary see no difference. Rule
# infer stays defined, unchanged (an unsharded run stays up to date after this change);
# with N > 1 the ruleorder hands its outputs to the gather.
#
# Snakemake's scattergather fits: the count is fixed when the DAG is built, and
# scatter/gather name the shards {scatteritem} = 1-of-N .. N-of-N, which is all a shard needs
# to know (retinaflow.shards.parse_shard). The count comes from infer.shards alone: with N = 1
# there is no infer_shard rule at all, so --set-scatter is refused (common.smk) rather than
# ignored.


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
        workers=lookup(within=config, dpath="infer/workers"),
        draw_images=lookup(within=config, dpath="infer/draw_images"),
        draw_min_score=lookup(within=config, dpath="infer/draw_min_score"),
        torch=torch_settings,
    script:
        "../scripts/infer.py"


if SHARDS > 1:

    ruleorder: infer_gather > infer

    rule infer_shard:
        input:
            **dataset_files(),
            runtime=runtime_input,
        output:
            detections="preds/{model}/{variant}/shards/{scatteritem}/detections.npz",
            stats="preds/{model}/{variant}/shards/{scatteritem}/stats.json",
        log:
            "logs/infer/{model}-{variant}-{scatteritem}.log",
        benchmark:
            "benchmarks/infer/{model}-{variant}-{scatteritem}.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: lookup(within=config, dpath="infer/threads")
        resources:
            mem_mb=mem_mb("infer"),
            gpu=shard_gpus,
        params:
            model=model_params(),
            resize_kernel=lookup(within=config, dpath="preprocess/resize_kernel"),
            decode=lookup(within=config, dpath="preprocess/decode"),
            postprocess=lookup(within=config, dpath="postprocess"),
            batch_size=infer_batch_size,
            device=lookup(within=config, dpath="infer/device"),
            # stats.json records the threads and the speed they give: a change reruns the job
            threads=lookup(within=config, dpath="infer/threads"),
            workers=lookup(within=config, dpath="infer/workers"),
            torch=torch_settings,
        script:
            "../scripts/infer_shard.py"

    rule infer_gather:
        input:
            **dataset_files(),
            detections=gather.infer(
                "preds/{{model}}/{{variant}}/shards/{scatteritem}/detections.npz"
            ),
            stats=gather.infer(
                "preds/{{model}}/{{variant}}/shards/{scatteritem}/stats.json"
            ),
        output:
            detections="preds/{model}/{variant}/detections.json",
            txt=directory("preds/{model}/{variant}/txt"),
            drawn=directory("preds/{model}/{variant}/drawn"),
            stats="preds/{model}/{variant}/stats.json",
        log:
            "logs/infer/{model}-{variant}-gather.log",
        benchmark:
            "benchmarks/infer/{model}-{variant}-gather.tsv"
        conda:
            "../../envs/torch.yaml"
        resources:
            mem_mb=mem_mb("infer"),
        params:
            batch_size=infer_batch_size,  # the shards' ranges are whole batches
            draw_images=lookup(within=config, dpath="infer/draw_images"),
            draw_min_score=lookup(within=config, dpath="infer/draw_min_score"),
        script:
            "../scripts/infer_gather.py"
