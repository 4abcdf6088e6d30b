"""Timing helpers for the side-by-side benchmarks (retinaflow.benchmarks): builds timed in
interleaved rounds (this machine drifts by up to ~50% between runs, so A B C A B C hits all
alike), a table of medians and ratios, and the host stages around a build (preprocessing and
post-processing) per image."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def time_interleaved(runners: dict[str, Callable], batch, repeats: int) -> dict[str, list[float]]:
    """`repeats` rounds that call every runner once in turn (warm them up before): the
    rule measure_speed's timing (speed.time_rounds) on one batch, without its warm-up."""
    from ..speed import time_rounds

    return time_rounds(runners, [batch], repeats, warmup=0)


def median_table(
    times: dict[str, list[float]], reference: str, extra: dict[str, dict[str, str]] | None = None
) -> str:
    """Median and min seconds per row and the median's ratio to `reference`'s; `extra` adds
    columns ({column: {row: text}})."""
    extra = extra or {}
    base = statistics.median(times[reference])
    width = max(len(name) for name in times) + 2
    head = f"{'build':<{width}}{'median s':>10}{'min s':>9}{f'/ {reference}':>{len(reference) + 4}}"
    head += "".join(f"{column:>12}" for column in extra)
    lines = [head]
    for name, values in times.items():
        median = statistics.median(values)
        row = f"{name:<{width}}{median:10.3f}{min(values):9.3f}"
        row += f"{median / base:>{len(reference) + 3}.2f}x"
        row += "".join(f"{extra[column].get(name, ''):>12}" for column in extra)
        lines.append(row)
    return "\n".join(lines)


def time_preprocessing(
    paths: Sequence[str | os.PathLike], size: int, kernel: str, threads: int = 1
) -> dict[str, float]:
    """ms per image: decode (+RGB, EXIF), resize + scale, both serially; and the wall time per
    image of the whole preprocessing in `threads` threads (what the LoadGen QSL does)."""
    from ..data.images import decode_image, preprocess_image, resize_image

    decode, resize = [], []
    for path in paths:
        started = time.perf_counter()
        image = decode_image(path, kernel)
        decoded = time.perf_counter()
        resize_image(image, (size, size), kernel)
        decode.append(decoded - started)
        resize.append(time.perf_counter() - decoded)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda p: preprocess_image(p, (size, size), kernel), paths))
    parallel = (time.perf_counter() - started) / len(paths)
    return {
        "decode": 1e3 * statistics.median(decode),
        "resize": 1e3 * statistics.median(resize),
        "serial": 1e3 * statistics.median(np.add(decode, resize)),
        f"{threads} threads (wall)": 1e3 * parallel,
    }


def time_postprocessing(
    maps: list[np.ndarray], arch: str, size: int, batch: int, settings, repeats: int = 5
) -> float:
    """ms per image of postprocess.postprocess_detections on `maps` (the 10 head maps of one
    image) repeated into a batch of `batch`, as the SUT runs it; `settings`: a
    postprocess.PostprocessSettings."""
    from ..detector import Detector

    batch_maps = [np.repeat(np.asarray(m)[:1], batch, axis=0) for m in maps]
    detector = Detector(None, arch, size, settings)
    runs = []
    for _ in range(repeats + 1):  # the first one warms up (and makes the anchors)
        started = time.perf_counter()
        detector.postprocess_maps(batch_maps, [(1, 1)] * batch)
        runs.append(time.perf_counter() - started)
    return 1e3 * statistics.median(runs[1:]) / batch


def dense_head_maps(maps: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Maps of the same shapes whose class logits put ~13% of scores above 0.05 (N(-4.6, 1.5)):
    every level then has its 1000 candidates, the post-processing's worst case."""
    rng = np.random.default_rng(seed)
    levels = len(maps) // 2
    class_maps = [
        (rng.standard_normal(m.shape, dtype=np.float32) * 1.5 - 4.6) for m in maps[:levels]
    ]
    box_maps = [rng.standard_normal(m.shape, dtype=np.float32) * 0.1 for m in maps[levels:]]
    return class_maps + box_maps
