"""Head speed side by side (results/speed.json): every variant's head (the 10 maps, no pre- or
post-processing) timed in one process, interleaved round by round (A B C A B C), so that the
machine's drift (up to ~50% between runs here) hits all variants alike.

Both runtimes that keep thread pools stop their threads spinning while idle (ONNX Runtime's
session.intra_op.allow_spinning=0, TVM_THREAD_POOL_SPIN_COUNT=0): a spinning pool of one
runtime slows the other's kernels by 2-3.6x when they share a process. A TVM build's figure
carries its tuning state from its meta json: an untuned build runs TVM's default loop nests,
hundreds of times slower than a tuned one, and is never presented as the build's speed
without saying so.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import SettingError
from .io import read_json
from .runtime import backend, open_runner
from .runtime.tvm_runner import build_device

REFERENCE = "onnx"
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def open_speed_runner(
    variant: str, path, model: dict, threads: int, batch: int, torch_settings: dict | None = None
):
    """The variant's runner on the CPU (a TVM build for a CUDA target on its GPU:
    tvm_runner.build_device), with idle threads that sleep (see the module docstring);
    `torch_settings` the PyTorch runner's settings (the CPU runs plain eager unless its
    apply_on_cpu)."""
    device = build_device(backend(variant), path)
    return open_runner(
        variant, path, model, threads, device, batch, spinning=False, torch_settings=torch_settings
    )


def tuning_state(meta_path: str | os.PathLike) -> dict:
    """A TVM build's tuning, from its meta json: trials, tuned functions of all, and `tuned`
    (False: no function carries a tuned schedule; its speed is TVM's default loops')."""
    meta = read_json(meta_path)
    trials = int(meta.get("tuning_trials") or 0)
    tuned_functions = int(meta.get("tuned_functions") or 0)
    total = int(meta.get("tir_functions") or 0)
    shipped = meta.get("tuning_shipped_database")
    return {
        "tuned": trials > 0 and tuned_functions > 0,
        "trials": trials,
        "tuned_functions": tuned_functions,
        "tir_functions": total,
        "shipped_database": shipped,
        "label": tuning_label(trials, tuned_functions, total, shipped),
    }


def tuning_label(trials: int, tuned_functions: int, total: int, shipped: str | None = None) -> str:
    if trials <= 0 or tuned_functions <= 0:
        return "untuned"
    source = f", shipped {shipped}" if shipped else ""
    return f"tuned ({trials} trials{source}, {tuned_functions}/{total} functions)"


def time_rounds(
    runners: dict[str, Callable],
    batches: Sequence[np.ndarray],
    rounds: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """`warmup` untimed calls per runner, then `rounds` rounds calling every runner once in
    turn, all on the round's batch (round r: batches[r % len(batches)]). Seconds per call."""
    if rounds < 1:
        raise SettingError("rounds", rounds, "at least 1 timed call per variant")
    for _ in range(warmup):
        for run in runners.values():
            run(batches[0])
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(rounds):
        batch = batches[r % len(batches)]
        for name, run in runners.items():
            started = clock()
            run(batch)
            times[name].append(clock() - started)
    return times


def spread(values: Sequence[float]) -> dict[str, float]:
    """min, quartiles (inclusive: within min..max) and max of the timed calls."""
    if len(values) == 1:
        return dict.fromkeys(("min", "p25", "p75", "max"), values[0])
    p25, _, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return {"min": min(values), "p25": p25, "p75": p75, "max": max(values)}


def machine_info(threads: int) -> dict:
    """The CPU model and the vector extensions that decide int8 speed (VNNI), from /proc/cpuinfo."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
            if model and flags:
                break
    return {
        "cpu": model,
        "flags": {flag: flag in flags for flag in CPU_FLAGS},
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
    }


def load_batches(
    image_paths: Sequence[str | os.PathLike], image_size: int, kernel: str, batch: int
) -> list[np.ndarray]:
    """The images preprocessed as inference does, grouped into batches of `batch` (the last
    one filled by repeating the first images)."""
    from .data.images import preprocess_image

    images = [preprocess_image(p, (image_size, image_size), kernel) for p in image_paths]
    if not images:
        raise ValueError("speed timing needs at least one image")
    count = max(1, -(-len(images) // batch))
    cycled = [images[i % len(images)] for i in range(count * batch)]
    return [np.stack(cycled[i * batch : (i + 1) * batch]) for i in range(count)]


def measure_speed(
    artifacts: dict[str, str | os.PathLike],
    image_paths: Sequence[str | os.PathLike],
    model: dict,
    resize_kernel: str,
    batch: int,
    threads: int,
    rounds: int,
    warmup: int,
    metas: dict[str, str | os.PathLike] | None = None,
    runners: dict[str, Callable] | None = None,
    torch_settings: dict | None = None,
) -> dict:
    """Time every variant of `artifacts` ({variant: what it runs}, in the order they run in a
    round) and return the speed record. `metas` holds each TVM build's meta json (its tuning
    state); `runners` may hand in opened runners (variant -> callable) instead of opening
    them from `artifacts`; `torch_settings` is the PyTorch runner's settings for the PyTorch
    variants (each entry then names the dtype and options that ran: `runner`).
    """
    metas = metas or {}
    batches = load_batches(image_paths, model["image_size"], resize_kernel, batch)
    if runners is None:
        runners = {
            v: open_speed_runner(v, path, model, threads, batch, torch_settings)
            for v, path in artifacts.items()
        }
    times = time_rounds(runners, batches, rounds, warmup)
    medians = {v: statistics.median(t) for v, t in times.items()}
    reference = medians.get(REFERENCE)
    variants = {}
    for variant, values in times.items():
        entry = {
            "runtime": backend(variant),
            "artifact": str(artifacts.get(variant, "")),
            "median_s": medians[variant],
            "spread": spread(values),
            "rounds": len(values),
            "ratio_to_onnx": medians[variant] / reference if reference else None,
            "times_s": values,
        }
        if hasattr(runners[variant], "settings"):  # a PyTorch runner: dtype, layout, compile
            entry["runner"] = runners[variant].settings()
        if entry["runtime"] == "tvm":
            if variant not in metas:
                raise ValueError(f"TVM build {variant!r} has no meta json: its tuning is unknown")
            entry["tuning"] = tuning_state(metas[variant])
        variants[variant] = entry
    return {
        "reference": REFERENCE if reference else None,
        "order": list(runners),
        "settings": {
            "rounds": rounds,
            "warmup": warmup,
            "threads": threads,
            "batch": batch,
            "images": len(image_paths),
            "image_size": model["image_size"],
            "resize_kernel": resize_kernel,
            "spinning": "off (ONNX Runtime and TVM)",
            "what": "the head alone: 10 maps, no pre- or post-processing",
        },
        "machine": machine_info(threads),
        "variants": variants,
    }
