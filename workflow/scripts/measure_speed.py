"""Rule measure_speed: results/speed.json, every variant's head timed interleaved in one process."""

import os

# PyTorch's OpenMP threads sleep when idle too (read when torch loads, before the imports)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from retinaflow.data.annotations import image_records, load_annotations  # noqa: E402
from retinaflow.io import write_json  # noqa: E402
from retinaflow.scripting import config_keys, job_logging  # noqa: E402
from retinaflow.speed import measure_speed  # noqa: E402

settings = config_keys(snakemake.config, "speed")
with job_logging(snakemake.log[0], settings=settings) as log:
    p = snakemake.params
    artifacts = dict(zip(p.variants, snakemake.input.runtimes, strict=True))
    metas = dict(zip(p.tvm_builds, snakemake.input.metas, strict=True))
    records = image_records(load_annotations(snakemake.input.annotations), snakemake.input.images)
    record = measure_speed(
        artifacts,
        [r.path for r in records[: p.images]],
        p.model,
        resize_kernel=p.resize_kernel,
        batch=p.batch,
        threads=p.threads,
        rounds=p.rounds,
        warmup=p.warmup,
        metas=metas,
        torch_settings=p.torch,
    )
    write_json(snakemake.output[0], record)
    for variant, entry in record["variants"].items():
        ratio = entry["ratio_to_onnx"]
        log.info(
            "%s: median %.2f ms%s%s",
            variant,
            1e3 * entry["median_s"],
            f", {ratio:.2f}x onnx" if ratio is not None else "",
            f", {entry['tuning']['label']}" if "tuning" in entry else "",
        )
