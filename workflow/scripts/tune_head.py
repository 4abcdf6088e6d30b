"""Rule tune_head: the MetaSchedule database of one precision, shared by its builds (0 trials
per task: the shipped database for the target's ISA class where one exists, else an empty,
valid one)."""

from retinaflow.scripting import config_keys, job_logging
from retinaflow.tuning import tune_head

settings = config_keys(snakemake.config, "compile.tuning", "compile")
with job_logging(snakemake.log[0], settings=settings) as log:
    p = snakemake.params
    meta = tune_head(
        snakemake.input.onnx,
        snakemake.output[0],
        target=p.target,
        trials_per_task=p.trials_per_task,
        input_shape=p.input_shape,
        precision=p.precision,
        fp16_accumulate=p.fp16_accumulate,
        trials_per_iter=p.trials_per_iter,
        seed=p.seed,
        tasks=p.tasks,
        model=p.model,
        use_shipped=p.shipped,
    )
    log.info("tuning: %s", meta)
