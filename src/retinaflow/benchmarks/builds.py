"""Time every build of the head in one process: PyTorch eager, ONNX Runtime fp32, ONNX Runtime
on the QDQ int8 model, and the TVM builds, interleaved (A B C A B C ...) so that this machine's
drift (up to ~50% between runs) hits all alike. Prints median latency and the ratio to ORT fp32.

    .venv/bin/python -m retinaflow.benchmarks builds --arch demo                     # 320x320
    .venv/bin/python -m retinaflow.benchmarks builds --arch resnext50_32x4d_fpn --size 800 \
        --skip-tvm-untuned-at-800
    .venv/bin/python -m retinaflow.benchmarks builds --arch resnext50_32x4d_fpn --size 800 \
        --tvm '' --tuned int8 --trials-per-task 16        # tunes first (~18 min on 2 cores)

What it needs and is not given (ONNX export, QDQ model, untuned and --tuned TVM builds and
their tuning databases) it makes in --cache, with random weights unless --weights names a
checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the project (src/retinaflow/benchmarks/..)


def configured() -> dict:
    """config/config.yaml: every setting the workflow builds with, and its default."""
    import yaml

    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="demo", choices=["demo", "resnext50_32x4d_fpn"])
    p.add_argument("--size", type=int, help="input side (default 320 demo, 800 real)")
    p.add_argument("--num-classes", type=int, help="default 6 demo, 264 real")
    p.add_argument("--weights", type=Path, help="checkpoint to load (default: random weights)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per build (default 5)")
    p.add_argument("--threads", type=int, default=_usable_cores(), help="threads per runtime")
    p.add_argument("--cache", type=Path, default=Path("cache/benchmark_builds"))
    p.add_argument("--onnx", type=Path, help="fp32 head ONNX to use instead of exporting one")
    p.add_argument("--qdq", type=Path, help="QDQ int8 ONNX to use instead of quantizing")
    p.add_argument(
        "--tvm",
        default="fp32,fp16,int8",
        help="untuned TVM builds to make in --cache, comma-separated ('' for none)",
    )
    p.add_argument(
        "--tuned",
        default="",
        help="TVM builds to tune (MetaSchedule, convolution tasks) and make in --cache, "
        "comma-separated, e.g. int8",
    )
    p.add_argument(
        "--trials-per-task",
        type=int,
        default=16,
        help="tuning budget of the --tuned builds (default 16)",
    )
    p.add_argument(
        "--tvm-build",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an existing TVM .so to time as well (e.g. a tuned build); repeatable",
    )
    p.add_argument(
        "--skip-tvm-untuned-at-800",
        action="store_true",
        help="make no untuned TVM builds when --size >= 800 (each run takes minutes)",
    )
    p.add_argument("--calibration-images", type=int, default=4)
    p.add_argument("--dry-run", action="store_true", help="print what would be timed, time nothing")
    args = p.parse_args(argv)
    real = args.arch == "resnext50_32x4d_fpn"
    args.size = args.size or (800 if real else 320)
    args.num_classes = args.num_classes or (264 if real else 6)
    return args


def _cached(path: Path, make, label: str) -> Path:
    if path.is_file():
        print(f"  reuse {label}: {path}", flush=True)
        return path
    started = time.perf_counter()
    make(path)
    print(f"  made {label} in {time.perf_counter() - started:.1f} s: {path}", flush=True)
    return path


def prepare(args):
    """The head module, the fp32 and QDQ models, the TVM builds and one input batch."""
    import torch

    from retinaflow.compile import compile_head
    from retinaflow.data.images import preprocess_image
    from retinaflow.demo.dataset import make_demo_dataset
    from retinaflow.export import export_head_onnx, simplify_onnx
    from retinaflow.model.architectures import build_retinanet
    from retinaflow.model.checkpoint import load_weights
    from retinaflow.model.head import HeadMaps
    from retinaflow.quantize import quantize_head
    from retinaflow.tuning import tune_head

    config = configured()
    tag = f"{args.arch}-{args.size}-{args.weights.stem if args.weights else 'random'}"
    cache = args.cache / tag
    torch.manual_seed(0)
    model = build_retinanet(args.arch, args.num_classes, args.size)
    if args.weights:
        load_weights(model, args.weights, args.arch)
    head = HeadMaps(model).eval()

    images_dir = cache / "images"
    if not (images_dir / "annotations.json").is_file():
        make_demo_dataset(images_dir, "val", max(args.calibration_images, 1))
    images = sorted((images_dir / "images").glob("*.jpg"))

    def export(path):
        raw = path.with_name("head.onnx")
        export_head_onnx(head, raw, args.size, config["export"]["opset"])
        simplify_onnx(raw, path)

    onnx_path = args.onnx or _cached(cache / "head.sim.onnx", export, "fp32 ONNX")
    qdq_path = args.qdq or _cached(
        cache / "head.int8-max.onnx",
        lambda p: quantize_head(
            onnx_path,
            p,
            images[: args.calibration_images],
            args.size,
            resize_kernel="pil",  # the demo model's; timing is the same for any kernel
            **{**config["quantize"], "method": "max"},
        ),
        "QDQ int8 ONNX (max, per-channel)",
    )
    builds = {}
    wanted = [v for v in args.tvm.split(",") if v]
    if args.skip_tvm_untuned_at_800 and args.size >= 800:
        print("  untuned TVM builds skipped at this size (--skip-tvm-untuned-at-800)")
        wanted = []
    shape = [1, 3, args.size, args.size]
    for precision in wanted:
        source = qdq_path if precision == "int8" else onnx_path
        so = cache / f"tvm-{precision}" / "module.so"
        builds[f"tvm {precision} (untuned)"] = _cached(
            so,
            lambda p, s=source, pr=precision: compile_head(
                s,
                p,
                p.with_name("meta.json"),
                None,
                pr,
                shape,
                fp16_accumulate=config["compile"]["fp16_accumulate"],
            ),
            f"TVM {precision} build",
        )
    for precision in [v for v in args.tuned.split(",") if v]:
        source = qdq_path if precision == "int8" else onnx_path
        budget = args.trials_per_task
        database = cache / f"tuning-{precision}-{budget}"
        if not (database / "tuning.json").is_file():
            started = time.perf_counter()
            tuning = config["compile"]["tuning"]
            tune_head(
                source,
                database,
                None,  # this host
                input_shape=shape,
                precision=precision,
                fp16_accumulate=config["compile"]["fp16_accumulate"],
                trials_per_iter=tuning["trials_per_iter"],
                seed=tuning["seed"],
                tasks=tuning["tasks"],
                use_shipped=False,  # a budget of its own, measured from scratch
                trials_per_task=budget,
            )
            print(f"  tuned {precision} in {time.perf_counter() - started:.0f} s: {database}")
        tuning = json.loads((database / "tuning.json").read_text())
        print(
            f"  {precision} database: {tuning['trials']} trials on {tuning['tasks']} tasks in "
            f"{tuning['tuning_seconds']:.0f} s"
        )
        so = cache / f"tvm-{precision}-tuned-{budget}" / "module.so"
        builds[f"tvm {precision} ({budget} trials/task)"] = _cached(
            so,
            lambda p, s=source, pr=precision, d=database: compile_head(
                s,
                p,
                p.with_name("meta.json"),
                None,
                pr,
                shape,
                tuning_dir=d,
                fp16_accumulate=config["compile"]["fp16_accumulate"],
            ),
            f"TVM {precision} build, tuned",
        )
    for item in args.tvm_build:
        name, _, path = item.partition("=")
        builds[f"tvm {name}"] = Path(path)
    batch = preprocess_image(images[0], (args.size, args.size), "pil")[None]
    return head, onnx_path, qdq_path, builds, batch


def main(argv=None) -> int:
    args = parse_args(argv)
    # TVM's thread pool reads this once, at its first use; compile (FoldConstant) may be first.
    os.environ["TVM_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")
    from retinaflow.benchmarks.timing import time_interleaved
    from retinaflow.export import compare_outputs
    from retinaflow.runtime.onnxruntime_runner import OnnxRuntimeRunner
    from retinaflow.runtime.torch_runner import TorchRunner
    from retinaflow.runtime.tvm_runner import TvmRunner

    print(f"{args.arch} at {args.size}x{args.size}, {args.threads} threads, {args.repeats} rounds")
    if args.dry_run:
        print(f"would time: {vars(args)}")
        return 0
    head, onnx_path, qdq_path, builds, batch = prepare(args)
    # idle threads sleep in both runtimes (here and TVM_THREAD_POOL_SPIN_COUNT=0 above): a
    # spinning pool of one slows the other 2-3.6x when they share a process (tvm-notes)
    runners = {
        "pytorch eager fp32": TorchRunner(head, threads=args.threads),
        "onnxruntime fp32": OnnxRuntimeRunner(onnx_path, threads=args.threads, spinning=False),
        "onnxruntime int8 (QDQ)": OnnxRuntimeRunner(qdq_path, threads=args.threads, spinning=False),
    }
    runners.update({name: TvmRunner(so, threads=args.threads) for name, so in builds.items()})

    reference = runners["onnxruntime fp32"](batch)
    cosine = {}
    for name, run in runners.items():  # the warm-up call, checked against ORT fp32
        started = time.perf_counter()
        maps = compare_outputs(reference, run(batch))
        cosine[name] = min(m["cosine"] for m in maps.values())
        print(f"  warm-up {name}: {time.perf_counter() - started:.3f} s", flush=True)
    times = time_interleaved(runners, batch, args.repeats)

    base = statistics.median(times["onnxruntime fp32"])
    qdq = statistics.median(times["onnxruntime int8 (QDQ)"])
    header = f"{'build':<30} {'median ms':>10} {'min ms':>9} {'/ ORT fp32':>11} {'/ ORT QDQ':>10}"
    print(f"\n{header} {'cos min':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<30} {1e3 * median:10.2f} {1e3 * min(values):9.2f} "
            f"{median / base:10.2f}x {median / qdq:9.2f}x {cosine[name]:9.5f}"
        )
    print(
        "\n'/ ORT fp32', '/ ORT QDQ': median latency over ONNX Runtime's fp32 / int8 (QDQ) one"
        " (below 1 is faster)."
    )
    print("'cos min': lowest cosine of the 10 head maps against ONNX Runtime fp32.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
