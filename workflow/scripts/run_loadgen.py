"""Rules run_loadgen and run_loadgen_accuracy: one MLPerf LoadGen test of a build."""

from retinaflow.perf import run_loadgen
from retinaflow.scripting import config_keys, job_logging

settings = config_keys(snakemake.config, "perf.scenarios", "perf", "infer", "preprocess")
with job_logging(snakemake.log[0], snakemake.threads, settings=settings) as log:
    record = run_loadgen(
        variant=snakemake.wildcards.variant,
        runtime_path=snakemake.input.runtime,
        annotations=snakemake.input.annotations,
        image_dir=snakemake.input.images,
        model=snakemake.params.model,
        scenario=snakemake.params.scenario,
        mode=snakemake.params.mode,
        settings=snakemake.params.settings,
        out_json=snakemake.output.json,
        log_dir=snakemake.params.log_dir,
        threads=snakemake.threads,
        batch_size=snakemake.params.batch_size,
        performance_sample_count=snakemake.params.performance_sample_count,
        resize_kernel=snakemake.params.resize_kernel,
        postprocess=snakemake.params.postprocess,
        device=snakemake.params.device,
        torch_settings=snakemake.params.torch,
        workers=snakemake.params.workers,
        batch_wait_ms=snakemake.params.batch_wait_ms,
    )
    log.info(
        "%s %s %s: %s, %d samples, %s samples/s, latency %s ms, stages %s ms/image",
        record["variant"], record["scenario"], record["mode"], record["result"],
        record["samples"], record["qps"], record["latency_ms"], record["stages_ms"],
    )  # fmt: skip
