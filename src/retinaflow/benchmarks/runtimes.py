"""Side by side, on the same input: ONNX Runtime fp32, ONNX Runtime on the int8 QDQ model of
the same export, PyTorch eager and any TVM build, timed in interleaved rounds (medians, ratio
to ONNX Runtime fp32), then the host stages around them per image: preprocessing (decode,
resize, and in parallel as the LoadGen sample library runs it) and post-processing (at batch
1 and 8, on this run's head maps and on dense worst-case maps).

    .venv/bin/python -m retinaflow.benchmarks runtimes                       # demo, then MLPerf 800
    .venv/bin/python -m retinaflow.benchmarks runtimes --archs demo --repeats 9
    .venv/bin/python -m retinaflow.benchmarks runtimes --archs resnext50_32x4d_fpn \
        --tvm-build tuned-fp32=builds/resnext50_32x4d_fpn/fp32/module.so

The builds themselves come from the `builds` benchmark (builds.py (`prepare`: export, onnxsim and
QDQ int8 in its --cache), random weights unless --weights; the demo defaults to the trained
demo weights, so its post-processing sees real detections). Untuned TVM builds take minutes
a run on a CPU: none by default here; `--tvm fp32,fp16,int8` makes them, `--tvm-build
NAME=PATH` adds an existing (tuned) one. Other options pass through to `builds`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from retinaflow.benchmarks import builds as benchmark_builds

ROOT = Path(__file__).resolve().parents[3]  # the project (src/retinaflow/benchmarks/..)

DEMO_WEIGHTS = ROOT / "resources/demo/retinanet_demo.pt"
REFERENCE = "onnxruntime fp32"


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    p.add_argument("--archs", nargs="+", default=["demo", "resnext50_32x4d_fpn"])
    p.add_argument("--stage-images", type=int, default=16, help="images for preprocessing")
    p.add_argument("--post-batch", type=int, default=8, help="the batched post-processing")
    p.add_argument("-h", "--help", action="store_true")
    args, rest = p.parse_known_args(argv)
    if args.help:
        p.print_help()
        print("\nand the builds benchmark's options:")
        benchmark_builds.parse_args(["--help"])
    return args, rest


def photo_like_jpegs(directory: Path, count: int) -> list[Path]:
    """OpenImages-sized (1024x768) JPEGs with gradients and noise: decode and resize cost as a
    photo does (the demo's shapes on flat colour compress and decode faster)."""
    import numpy as np
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"photo{i:03d}.jpg" for i in range(count)]
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:768, 0:1024]
    for i, path in enumerate(paths):
        if path.is_file():
            continue
        pixels = np.stack([(x / 4 + 40 * i) % 256, (y / 3) % 256, ((x + y) / 5) % 256], -1)
        pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, quality=90)
    return paths


def make_runners(bargs, head, onnx_path, qdq_path, builds) -> dict:
    from retinaflow.runtime.onnxruntime_runner import OnnxRuntimeRunner
    from retinaflow.runtime.torch_runner import TorchRunner

    runners = {
        REFERENCE: OnnxRuntimeRunner(onnx_path, threads=bargs.threads),
        "onnxruntime int8 (QDQ)": OnnxRuntimeRunner(qdq_path, threads=bargs.threads),
        "pytorch eager fp32": TorchRunner(head, threads=bargs.threads),
    }
    if builds:
        from retinaflow.runtime.tvm_runner import TvmRunner

        runners.update({name: TvmRunner(so, threads=bargs.threads) for name, so in builds.items()})
    return runners


def benchmark(arch: str, args, rest: list[str]) -> None:
    import torch

    from retinaflow.benchmarks.timing import (
        dense_head_maps,
        median_table,
        time_interleaved,
        time_postprocessing,
        time_preprocessing,
    )
    from retinaflow.export import compare_outputs
    from retinaflow.postprocess import PostprocessSettings

    passthrough = ["--tvm", ""] + rest if "--tvm" not in rest else list(rest)
    if arch == "demo" and "--weights" not in rest and DEMO_WEIGHTS.is_file():
        passthrough += ["--weights", str(DEMO_WEIGHTS)]
    bargs = benchmark_builds.parse_args(["--arch", arch, *passthrough])
    weights = bargs.weights.name if bargs.weights else "random weights"
    print(
        f"\n=== {arch} at {bargs.size}x{bargs.size}, {weights}, {bargs.threads} threads, "
        f"{bargs.repeats} interleaved rounds, batch 1 ===",
        flush=True,
    )
    head, onnx_path, qdq_path, builds, batch = benchmark_builds.prepare(bargs)
    runners = make_runners(bargs, head, onnx_path, qdq_path, builds)

    reference = runners[REFERENCE](batch)
    cosine = {}
    for name, run in runners.items():  # the warm-up call, checked against ORT fp32
        started = time.perf_counter()
        maps = compare_outputs(reference, run(batch))
        cosine[name] = f"{min(m['cosine'] for m in maps.values()):.5f}"
        print(f"  warm-up {name}: {time.perf_counter() - started:.3f} s", flush=True)
    times = time_interleaved(runners, batch, bargs.repeats)
    print()
    print(median_table(times, REFERENCE, {"cos min": cosine}))

    # the host stages, per image; PyTorch's pool at 1 thread as beside another runtime
    torch.set_num_threads(1)
    if arch == "demo":
        from retinaflow.demo.dataset import make_demo_dataset

        stage_dir = bargs.cache / f"demo-images-{args.stage_images}"
        if not (stage_dir / "annotations.json").is_file():
            make_demo_dataset(stage_dir, "val", args.stage_images)
        images = sorted((stage_dir / "images").glob("*.jpg"))
    else:
        images = photo_like_jpegs(bargs.cache / "photos", args.stage_images)
    pre = time_preprocessing(images, bargs.size, "pil", threads=bargs.threads)
    settings = PostprocessSettings(**benchmark_builds.configured()["postprocess"])  # MLPerf's
    post = {}
    for label, maps in (("this run's maps", reference), ("dense maps", dense_head_maps(reference))):
        for n in (1, args.post_batch):
            post[f"{label}, batch {n}"] = time_postprocessing(maps, arch, bargs.size, n, settings)
    fp32_ms = 1e3 * sorted(times[REFERENCE])[len(times[REFERENCE]) // 2]
    source = "demo dataset" if arch == "demo" else "1024x768 photo-like JPEGs"
    print(f"\nhost stages, ms per image ({len(images)} {source}; vs ORT fp32 {fp32_ms:.1f} ms):")
    for name, ms in pre.items():
        print(f"  preprocess {name:<34}{ms:9.2f}  ({ms / fp32_ms:6.1%} of ORT fp32)")
    for name, ms in post.items():
        print(f"  post-process {name:<32}{ms:9.2f}  ({ms / fp32_ms:6.1%} of ORT fp32)")


def main(argv=None) -> int:
    args, rest = parse_args(argv)
    if args.help:
        return 0
    os.environ.setdefault("TVM_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    if "--dry-run" in rest:
        for arch in args.archs:
            plan = vars(benchmark_builds.parse_args(["--arch", arch, *rest]))
            print(f"would time {arch}: {plan}")
        return 0
    for arch in args.archs:
        benchmark(arch, args, rest)
    print("\n'/ onnxruntime fp32': median latency over ONNX Runtime fp32's (below 1 is faster).")
    print("'cos min': lowest cosine of the 10 head maps against ONNX Runtime fp32.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
