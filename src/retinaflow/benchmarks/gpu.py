"""The head on a GPU, stage by stage: for each PyTorch variant (fp32, fp16, bf16, int8), each
torch.compile mode, CUDA graphs and the fused backbone on or off, and each batch size, the
host->device copy, the head, the post-processing (Detector.postprocess_maps on the maps where
the head left them: on the head's own maps and on dense worst-case maps) and the whole way from
a pinned host batch to detections, as img/s; ONNX Runtime's CUDA provider as a peer where this
onnxruntime has it (onnxruntime-gpu): `onnx`, the exported head in float32, and `onnx-fp16`,
the same converted to float16 (onnxruntime.transformers.float16, float16 input and maps, as
torch-fp16 has), their head timed with IO binding (the input and the maps on the device, no
host copy: what the PyTorch rows' head stage times). CUDA events time the stages after warm-up
calls (the first call, with its compile or graph capture, is timed on its own); a table comes
last, and a JSON holds every figure. `pipelined` is the throughput LoadGen's Offline workers
can reach: `--in-flight` threads each calling the Detector (host batch -> detections), one
batch's post-processing beside another's head, timed by the wall clock; on the H200 it ran
1,219 img/s on noise where LoadGen's Offline test gave 1,035-1,085 (benchmarks/gpu-h200.md,
ninth lease), and as LoadGen on LoadGen's own images (tenth lease: `--images`).

    python -m retinaflow.benchmarks gpu --arch resnext50_32x4d_fpn --size 800 \
        --batch-sizes 8 32 64 --variants torch torch-fp16 torch-bf16 onnx onnx-fp16
    python -m retinaflow.benchmarks gpu ... --compile none default --cuda-graphs off on
    python -m retinaflow.benchmarks gpu ... --fuse-batch-norm off on  # model/fused_backbone.py
    python -m retinaflow.benchmarks gpu --device cpu --arch demo --size 320 --batch-sizes 2 \
        --iters 3                                          # the same code on a CPU: a smoke test

Random weights unless --weights; random U(0,1) input unless --images (a folder of images,
preprocessed as the infer rule does: the post-processing's cost depends on what they show,
e.g. flat backgrounds give many tied logits; on the H200 the demo's images ran the pipeline
13% slower than noise, benchmarks/gpu-h200.md, tenth lease); torch-int8 calibrates on the
first images of the timed batch (the ranges set its scales, not its speed). One
configuration that fails (out of memory, a compile error) prints its exception and the others
still run.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

from ..data.images import RESIZE_KERNELS

VARIANTS = ("torch", "torch-fp16", "torch-bf16", "torch-int8", "onnx", "onnx-fp16")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ONNX_VARIANTS = ("onnx", "onnx-fp16")
STAGES = ("h2d", "head", "post", "post_dense", "e2e", "pipelined")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnext50_32x4d_fpn", choices=["demo", "resnext50_32x4d_fpn"])
    p.add_argument("--size", type=int, help="input side (default 800 real, 320 demo)")
    p.add_argument("--num-classes", type=int, help="default 264 real, 6 demo")
    p.add_argument("--weights", type=Path, help="checkpoint to load (default: random weights)")
    p.add_argument(
        "--images",
        type=Path,
        help="a folder of images (.jpg, .jpeg, .png; e.g. data/demo/images) to time on, sorted "
        "and repeated to fill each batch (default: U(0,1) noise)",
    )
    p.add_argument(
        "--resize-kernel",
        default="mlperf",
        choices=RESIZE_KERNELS,
        help="how --images are resized (default mlperf, MLPerf's reference preprocessing)",
    )
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument(
        "--compile",
        nargs="+",
        default=["none"],
        choices=["none", "default", "max-autotune", "reduce-overhead"],
        help="torch.compile modes to time (default none; compiling takes minutes at 800)",
    )
    p.add_argument(
        "--cuda-graphs",
        nargs="+",
        default=["off", "on"],
        choices=["off", "on"],
        help="CUDA graphs off and/or on (on is skipped on the CPU and under compile modes "
        "that capture their own)",
    )
    p.add_argument(
        "--fuse-batch-norm",
        nargs="+",
        default=["on"],
        choices=["off", "on"],
        help="the backbone's batch norms folded, each conv's ReLU (and add) in its cuDNN call "
        "(model/fused_backbone.py): off and/or on",
    )
    p.add_argument("--no-channels-last", action="store_true", help="keep NCHW")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls after the first")
    p.add_argument("--iters", type=int, default=20, help="timed calls per stage")
    p.add_argument("--threads", type=int, default=4, help="CPU threads (PyTorch, ORT)")
    p.add_argument(
        "--in-flight",
        type=int,
        default=2,
        help="batches in flight for the pipelined figure: threads calling the Detector, as "
        "LoadGen's Offline workers do",
    )
    p.add_argument("--json", type=Path, help="where the figures go (default gpu-<device>.json)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, time nothing")
    args = p.parse_args(argv)
    real = args.arch == "resnext50_32x4d_fpn"
    args.size = args.size or (800 if real else 320)
    args.num_classes = args.num_classes or (264 if real else 6)
    args.json = args.json or Path(f"gpu-{args.device}.json")
    if args.in_flight < 1:
        p.error(f"--in-flight must be at least 1, got {args.in_flight}")
    if args.images is not None and not image_files(args.images):
        p.error(f"--images {args.images}: no {'/'.join(IMAGE_SUFFIXES)} files in that folder")
    return args


def image_files(folder: Path) -> list[Path]:
    """The folder's images, sorted (none where it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)


def input_batch(batch: int, size: int, images: Path | None, kernel: str):
    """[batch, 3, size, size] float32 on the host: U(0,1) noise (seeded by the batch size),
    or the folder's images preprocessed with `kernel`, repeated in order to fill the batch."""
    import numpy as np
    import torch

    from ..data.images import preprocess_image

    if images is None:
        return torch.rand((batch, 3, size, size), generator=torch.Generator().manual_seed(batch))
    files = image_files(images)
    chosen = [files[i % len(files)] for i in range(batch)]
    return torch.from_numpy(np.stack([preprocess_image(f, (size, size), kernel) for f in chosen]))


def environment(device: str) -> dict:
    """Versions and the device, printed first and kept in the JSON."""
    import torch
    import torchvision

    from ..runtime import cpu_model

    env = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cpu": cpu_model(),
        "device": device,
        "device_name": None,
    }
    if torch.cuda.is_available():
        env["device_name"] = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["multiprocessors"] = props.multi_processor_count
    elif device == "cpu":
        env["device_name"] = env["cpu"]
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
        env["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime"] = None
    return env


class Clock:
    """Milliseconds of a call: CUDA events on a GPU (recorded around the call, read after a
    synchronize), perf_counter on the CPU."""

    def __init__(self, device: str):
        import torch

        self.cuda = device == "cuda"
        self.torch = torch

    def __call__(self, fn) -> float:
        if self.cuda:
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        started = time.perf_counter()
        fn()
        return 1e3 * (time.perf_counter() - started)

    def median(self, fn, iters: int) -> float:
        return statistics.median(self(fn) for _ in range(iters))


def pipelined_ms(step, threads: int, iters: int) -> float:
    """Wall-clock ms a batch with `threads` threads each running `step` (host batch ->
    detections) `iters` times, after one untimed call each (a thread's CUDA graph is captured
    on its first call); the clock runs from all threads' start to the last one's end."""
    import threading

    ready = threading.Barrier(threads + 1)
    errors = []

    def work():
        try:
            step()
            ready.wait()
            ready.wait()
            for _ in range(iters):
                step()
            ready.wait()
        except threading.BrokenBarrierError:  # another thread failed
            pass
        except Exception as err:  # raised in the caller; the others are let go
            errors.append(err)
            ready.abort()

    pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    try:
        ready.wait()
        started = time.perf_counter()
        ready.wait()
        ready.wait()
        wall = time.perf_counter() - started
    except threading.BrokenBarrierError:
        wall = None
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return 1e3 * wall / (threads * iters)


def dense_maps(maps):
    """Maps of the same shapes on the same device whose class logits put ~13% of the scores
    above 0.05 (N(-4.6, 1.5)): every level has its 1000 candidates, post-processing's worst
    case (random weights give none)."""
    import torch

    gen = torch.Generator(device=maps[0].device).manual_seed(0)
    levels = len(maps) // 2
    rand = lambda m: torch.randn(m.shape, generator=gen, device=m.device)  # noqa: E731
    return [rand(m) * 1.5 - 4.6 for m in maps[:levels]] + [rand(m) * 0.1 for m in maps[levels:]]


FP16_SMALLEST_NORMAL = 2.0**-14


def relative_error(reference, maps) -> float:
    """The largest relative L2 error of the 10 maps against the fp32 eager ones. Maps whose
    RMS is below float16's smallest normal number (2^-14) are left out: random weights give
    box maps of ~1e-8, which float16 cannot hold, and a trained head none such."""
    import numpy as np

    worst = 0.0
    for ref, got in zip(reference, maps, strict=True):
        ref = np.asarray(ref, dtype=np.float64)
        got = np.asarray(got.float().cpu() if hasattr(got, "cpu") else got, dtype=np.float64)
        if np.sqrt(np.mean(ref**2)) < FP16_SMALLEST_NORMAL:
            continue
        worst = max(worst, float(np.linalg.norm(ref - got) / np.linalg.norm(ref)))
    return worst


def configurations(args) -> list[dict]:
    """(variant, compile, graphs, fuse) to time, in order; graphs on is left out where it
    cannot run."""
    from ..runtime.torch_runner import COMPILE_MODES_WITH_GRAPHS

    configs = []
    for variant in args.variants:
        if variant in ONNX_VARIANTS:
            configs.append({"variant": variant, "compile": "n/a", "graphs": "n/a", "fuse": "n/a"})
            continue
        for fuse, mode, graphs in itertools.product(
            args.fuse_batch_norm, args.compile, args.cuda_graphs
        ):
            if graphs == "on" and (args.device != "cuda" or mode in COMPILE_MODES_WITH_GRAPHS):
                continue
            configs.append({"variant": variant, "compile": mode, "graphs": graphs, "fuse": fuse})
    return configs


def time_torch(config, head, batch, host, reference, detector, clock, args) -> dict:
    import torch

    from ..runtime.torch_runner import TorchOptions, TorchRunner, variant_dtype

    options = TorchOptions(
        dtype=variant_dtype(config["variant"]),
        channels_last=not args.no_channels_last,
        compile=config["compile"],
        cuda_graphs=config["graphs"] == "on",
        fuse_batch_norm=config["fuse"] == "on",
    )
    if options.compile != "none":
        # a fresh compile per configuration: dynamo's recompile limit (8 a code object) would
        # otherwise leave later configurations running eager without a word
        torch.compiler.reset()
    net = copy.deepcopy(head)
    if config["variant"] == "torch-int8":
        from ..model.int8_head import Int8Head, calibrate

        sample = host[: min(4, batch)].to(args.device)
        net = Int8Head(net, calibrate(copy.deepcopy(head).to(args.device), [sample]))
    runner = TorchRunner(
        net, args.threads, args.device, options, batch_size=batch, keep_on_device=True
    )
    originals = [(1, 1)] * batch
    started = time.perf_counter()
    maps = runner(host)  # compile, cuDNN's autotuning, graph capture
    first = time.perf_counter() - started
    for _ in range(args.warmup):
        maps = runner(host)
    with torch.inference_mode():
        x = runner.to_device(host)
        figures = {
            "h2d": clock.median(lambda: runner.to_device(host), args.iters),
            # lent maps: what the Detector takes (no copy of a graph's outputs)
            "head": clock.median(lambda: runner.run_on_device(x, lend=True), args.iters),
        }
    dense = dense_maps(maps)
    detector.postprocess_maps(maps, originals)  # anchors made, kernels warm
    figures["post"] = clock.median(lambda: detector.postprocess_maps(maps, originals), args.iters)
    figures["post_dense"] = clock.median(
        lambda: detector.postprocess_maps(dense, originals), args.iters
    )
    figures["e2e"] = clock.median(
        lambda: detector.postprocess_maps(runner.lend(host), originals), args.iters
    )
    from ..detector import Detector

    piped = Detector(runner, args.arch, args.size, detector.settings)
    figures["pipelined"] = pipelined_ms(lambda: piped(host, originals), args.in_flight, args.iters)
    settings = runner.settings()
    record = {
        **figures,
        "first_call_s": round(first, 3),
        "max_rel_error_vs_fp32": relative_error(reference, maps),
        "runner": settings,
        "cuda_graphs_used": settings["cuda_graphs"],
    }
    if args.device == "cuda":
        record["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return record


def float16_model(onnx_path: Path) -> Path:
    """The exported float32 head converted to float16, input and maps too (variant onnx-fp16),
    beside it; ONNX Runtime's own converter."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path = onnx_path.with_name(onnx_path.stem + "-fp16.onnx")
    if not path.exists():
        onnx.save(convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=False), path)
    return path


def bound_head(session, images, device: str):
    """A call of `session` on `images` already on `device`, the maps left there (ONNX Runtime's
    IO binding): the head alone, as the PyTorch rows time it, without the host copies that
    session.run makes. Returns (call, the maps of one call as numpy, for checking)."""
    import onnxruntime as ort

    from ..model.head import INPUT_NAME, OUTPUT_NAMES
    from ..runtime import split_device

    kind, index = split_device(device)
    binding = session.io_binding()
    binding.bind_ortvalue_input(INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(images, kind, index))
    for name in OUTPUT_NAMES:
        binding.bind_output(name, kind, index)

    def call():
        session.run_with_iobinding(binding)  # returns once the device is done

    call()
    return call, [value.numpy() for value in binding.get_outputs()]


def time_onnxruntime(onnx_path, batch, host, reference, detector, clock, args) -> dict:
    import numpy as np
    import torch

    from ..runtime import runner_settings
    from ..runtime.onnxruntime_runner import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(onnx_path, threads=args.threads, device=args.device)
    dtype = np.float16 if runner.session.get_inputs()[0].type == "tensor(float16)" else np.float32
    images = host.numpy().astype(dtype)
    originals = [(1, 1)] * batch
    started = time.perf_counter()
    maps = runner(images)
    first = time.perf_counter() - started
    for _ in range(args.warmup):
        runner(images)
    head, bound_maps = bound_head(runner.session, images, args.device)
    # the same session on the same input: equal but for the device's choice of kernels
    # between calls (~1e-7 in float32, ~1e-3 in float16); a wrong binding is off by ~1
    if relative_error(maps, bound_maps) > 1e-2:
        raise RuntimeError("ONNX Runtime's maps differ between session.run and IO binding")
    detector.postprocess_maps(maps, originals)
    dense = [m.numpy() for m in dense_maps([torch.from_numpy(m) for m in maps])]

    def end_to_end():
        return detector.postprocess_maps(runner(images), originals)

    return {
        "h2d": None,  # inside the session's call
        "head": clock.median(head, args.iters),
        "post": clock.median(lambda: detector.postprocess_maps(maps, originals), args.iters),
        "post_dense": clock.median(lambda: detector.postprocess_maps(dense, originals), args.iters),
        "e2e": clock.median(end_to_end, args.iters),
        "pipelined": pipelined_ms(end_to_end, args.in_flight, args.iters),
        "first_call_s": round(first, 3),
        "max_rel_error_vs_fp32": relative_error(reference, maps),
        "runner": {**runner_settings(runner), "dtype": np.dtype(dtype).name},
    }


def onnx_unavailable(device: str) -> str | None:
    """Why ONNX Runtime cannot be the peer on `device`, None when it can."""
    try:
        import onnxruntime as ort
    except ImportError:
        return "not available (onnxruntime is not installed)"
    provider = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}[device]
    if provider not in ort.get_available_providers():
        return f"not available ({provider} missing; providers: {ort.get_available_providers()})"
    return None


def table(rows: list[dict]) -> str:
    def ms(value):
        return f"{value:13.2f}" if isinstance(value, float) else f"{'-':>13}"

    head = (
        f"{'variant':<11}{'compile':<16}{'graphs':<7}{'fuse':<5}{'batch':>6}"
        + "".join(f"{s + ' ms':>15}" for s in STAGES)
        + f"{'head img/s':>11}{'e2e img/s':>10}{'pipe img/s':>11}{'rel err':>9}{'first s':>9}"
    )
    lines = [head]
    for row in rows:
        left = (
            f"{row['variant']:<11}{row['compile']:<16}{row['graphs']:<7}{row['fuse']:<5}"
            f"{row['batch']:>6}"
        )
        if "error" in row:
            lines.append(f"{left}  {row['error'][:110]}")
            continue
        stages = "".join(f"  {ms(row[s])}" for s in STAGES)
        lines.append(
            f"{left}{stages}{row['head_img_s']:11.1f}{row['e2e_img_s']:10.1f}"
            f"{row['pipelined_img_s']:11.1f}"
            f"{row['max_rel_error_vs_fp32']:9.1e}{row['first_call_s']:9.2f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    env = environment(args.device)
    print("environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), flush=True)
    configs = configurations(args)
    print(
        f"{args.arch} at {args.size}x{args.size}, {args.num_classes} classes, "
        f"{'weights ' + str(args.weights) if args.weights else 'random weights'}, "
        f"{'images of ' + str(args.images) if args.images else 'random input'}, "
        f"batches {args.batch_sizes}, {args.warmup} warm-up + {args.iters} timed calls a stage, "
        f"channels_last {not args.no_channels_last}",
        flush=True,
    )
    for config in configs:
        print(f"  plan: {config}", flush=True)
    if args.dry_run:
        return 0

    import torch

    from ..detector import Detector
    from ..export import export_head_onnx
    from ..model.architectures import build_retinanet
    from ..model.checkpoint import load_weights
    from ..model.head import HeadMaps
    from ..postprocess import PostprocessSettings
    from ..runtime.torch_runner import TorchRunner, torch_device
    from .builds import configured

    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    try:
        torch_device(args.device)
    except Exception as err:  # no GPU: every row says so, the JSON too
        rows = [{**c, "batch": b, "error": f"{type(err).__name__}: {err}"}
                for c in configs for b in args.batch_sizes]  # fmt: skip
        return _finish(args, env, rows)
    torch.manual_seed(0)
    model = build_retinanet(args.arch, args.num_classes, args.size)
    if args.weights:
        load_weights(model, args.weights, args.arch)
    head = HeadMaps(model).eval()
    settings = PostprocessSettings(**configured()["postprocess"])  # MLPerf's
    detector = Detector(None, args.arch, args.size, settings)
    clock = Clock(args.device)
    workdir = Path(tempfile.mkdtemp(prefix="retinaflow-gpu-"))
    onnx_path = None

    for batch in args.batch_sizes:
        host = input_batch(batch, args.size, args.images, args.resize_kernel)
        if args.device == "cuda":
            host = host.pin_memory()
        try:  # the fp32 eager maps every variant is compared with
            eager = TorchRunner(
                copy.deepcopy(head), args.threads, args.device, keep_on_device=False
            )
            reference = eager(host)
            del eager
        except Exception as err:
            print(f"fp32 eager reference at batch {batch} failed: {err}", flush=True)
            reference = None
        for config in configs:
            row = {**config, "batch": batch}
            label = (
                f"{config['variant']} compile={config['compile']} graphs={config['graphs']} "
                f"fuse={config['fuse']}"
            )
            print(f"-- {label} batch {batch}", flush=True)
            try:
                if reference is None:
                    raise RuntimeError("no fp32 reference at this batch (see above)")
                if config["variant"] in ONNX_VARIANTS:
                    why = onnx_unavailable(args.device)
                    if why:
                        raise RuntimeError(f"onnxruntime {args.device}: {why}")
                    if onnx_path is None:
                        onnx_path = workdir / "head.onnx"
                        export_head_onnx(
                            head, onnx_path, args.size, configured()["export"]["opset"]
                        )
                    path = onnx_path
                    if config["variant"] == "onnx-fp16":
                        path = float16_model(onnx_path)
                    row.update(
                        time_onnxruntime(path, batch, host, reference, detector, clock, args)
                    )
                else:
                    row.update(
                        time_torch(config, head, batch, host, reference, detector, clock, args)
                    )
                row["head_img_s"] = 1e3 * batch / row["head"]
                row["e2e_img_s"] = 1e3 * batch / row["e2e"]
                row["pipelined_img_s"] = 1e3 * batch / row["pipelined"]
                print(
                    "   "
                    + ", ".join(f"{s} {row[s]:.2f} ms" for s in STAGES if row[s] is not None)
                    + f"; {row['e2e_img_s']:.1f} img/s end to end",
                    flush=True,
                )
            except Exception as err:  # one configuration's failure: reported, the rest run
                traceback.print_exc()
                row["error"] = f"{type(err).__name__}: {err}".splitlines()[0]
                print(f"   failed: {row['error']}", flush=True)
            rows.append(row)
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
    return _finish(args, env, rows)


def _finish(args, env: dict, rows: list[dict]) -> int:
    record = {
        "environment": env,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "stages": {
            "h2d": "pinned host batch -> the device, cast to the dtype and layout (ms a batch)",
            "head": "the 10 maps from an input already on the device, in the variant's dtype "
            "(ONNX Runtime: IO binding) (ms a batch)",
            "post": "Detector.postprocess_maps on the head's maps where they are (ms a batch)",
            "post_dense": "the same on dense maps: 1000 candidates a level (worst case)",
            "e2e": "pinned host batch -> detections: copy, head, post-processing (ms a batch)",
            "pipelined": "the same from --in-flight threads at once: wall ms a batch",
        },
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1, default=str))
    print(f"\n{env['device_name'] or args.device}: {args.arch} at {args.size}x{args.size}")
    print(table(rows))
    print(
        "stages: ms a batch (median); h2d pinned copy to the device; post on the head's maps, "
        "post_dense on 1000 candidates a level; e2e the whole way, host batch -> detections; "
        f"pipelined the same, {args.in_flight} batches in flight (wall ms a batch); "
        "rel err: largest relative L2 error of a map against fp32 eager (maps of RMS < 2^-14 left "
        "out); first s: the first call (compile, autotuning, graph capture)."
    )
    print(f"figures: {args.json}")
    return 0 if any("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
