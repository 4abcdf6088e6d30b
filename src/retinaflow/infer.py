"""The infer rule's step (`infer_variant`): a variant's runner (runtime.open_runner) in a
Detector over the dataset, batch by batch, detections in original pixel coordinates; writers
turn them into the COCO results json, the seed's per-image txt files, images with boxes drawn
and the timing figures (stats.json: the stages, the device that ran and its name, a PyTorch
variant's dtype, compile mode and CUDA graphs).

Batches come from the parallel CPU loader (data.images.iter_batches), or with
the decoder "gpu" from the device itself (iter_device_batches: nvJPEG and the torch
kernel's resize on the GPU, the batch already where the head runs), or with "gpu-resize"
decoded by the CPU's threads and resized on the device.

Split into shards, the same work runs as jobs: `infer_shard` runs one shard's images (see
shards.py) to a .npz, and `gather_shards` hands every shard's detections, in order, to the same
writers, so that detections.json, txt/ and drawn/ are byte-identical to an unsharded run's.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .data.annotations import ImageRecord, class_names, image_records, load_annotations
from .data.images import iter_batches, iter_device_batches, load_image
from .detector import Detector
from .errors import SettingError, ref
from .evaluate import detections_to_coco
from .io import atomic_path, read_json, write_json
from .postprocess import PostprocessSettings
from .runtime import open_runner, runner_settings
from .shards import (
    gather_detections,
    gather_stats,
    parse_shard,
    shard_device,
    shard_items,
    write_shard_detections,
)

log = logging.getLogger("retinaflow")


def infer_images(
    records: list[ImageRecord],
    detector: Detector,
    resize_kernel: str,
    batch_size: int,
    workers: int,
    decode: str,
    device: str,
    progress: bool = True,
    in_flight: int = 1,
) -> Iterator[tuple[ImageRecord, dict[str, np.ndarray]]]:
    """Yield (record, detections) in record order; detections hold numpy boxes/scores/labels.

    `decode` cpu: the parallel CPU loader (`workers` threads); gpu: decode and resize on
    `device` (the torch kernel; the config check asks for resize_kernel torch and device cuda);
    gpu-resize: decoded by the `workers` threads, resized on `device`.
    The detector's timers get `preprocess_wait` beside `inference` and `postprocess`: the time
    spent waiting for each batch (the loader works ahead, so only what it could not hide).
    `in_flight` > 1: that many batches in the Detector at once, each in a thread of its own
    (on a GPU one batch's post-processing runs beside the next one's head, as LoadGen's
    workers do, perf/sut.py); the same batches, so the same detections, yielded in order.
    """
    paths = [r.path for r in records]
    bar = tqdm(total=len(records), desc="infer", unit="img", file=sys.stderr, disable=not progress)
    start = 0
    if decode in ("gpu", "gpu-resize"):
        if resize_kernel != "torch":
            raise SettingError(
                "resize_kernel",
                resize_kernel,
                f"torch: {ref('decode')} {decode} runs the torch kernel",
            )
        if decode == "gpu":
            log.warning(
                "%s gpu: nvJPEG decodes to other pixels than libjpeg-turbo (by up to ~100 "
                "levels at sharp colour edges; the demo lost 2 points of mAP): a throughput "
                "setting; gpu-resize decodes on the CPU, cpu does it all there",
                ref("decode"),
            )
        host_decode = decode == "gpu-resize"
        batches = iter_device_batches(
            paths, detector.size, batch_size, device, workers, host_decode=host_decode
        )
    else:
        batches = iter_batches(paths, detector.size, resize_kernel, batch_size, workers)
    in_flight = max(1, in_flight)
    with ThreadPoolExecutor(in_flight, thread_name_prefix="detector") as pool:
        pending: deque = deque()  # (records, their detections or a future of them), in order
        waited = time.perf_counter()
        for batch in batches:
            # the time the head waited for this batch: large when preprocessing bounds throughput
            detector.timers.add("preprocess_wait", time.perf_counter() - waited, len(batch))
            chunk = records[start : start + len(batch)]
            start += len(batch)
            originals = [(r.height, r.width) for r in chunk]
            if in_flight == 1:  # inline, on this thread
                pending.append((chunk, detector(batch, originals)))
            else:
                pending.append((chunk, pool.submit(detector, batch, originals)))
            while len(pending) >= in_flight:
                yield from _finished(pending.popleft(), bar)
            waited = time.perf_counter()
        while pending:
            yield from _finished(pending.popleft(), bar)
    bar.close()


def _finished(item, bar) -> Iterator[tuple[ImageRecord, dict[str, np.ndarray]]]:
    chunk, detections = item
    if isinstance(detections, Future):
        detections = detections.result()
    yield from zip(chunk, detections, strict=True)
    bar.update(len(chunk))


def run_inference(records: list[ImageRecord], detector: Detector, **kwargs) -> tuple[list, dict]:
    """All detections of a dataset, plus timing figures for the log: the whole run's rate and
    the rate and stages after the first batch (which carries torch.compile, cuDNN's autotuning
    and graph capture on a GPU: tens of seconds that a short run's overall rate would hide a
    head in)."""
    t0 = time.perf_counter()
    results, first, warm = [], None, None
    for item in infer_images(records, detector, **kwargs):
        if first is None:  # the first batch's detections are out
            first = time.perf_counter() - t0
            warm = detector.timers.snapshot()
        results.append(item)
    elapsed = time.perf_counter() - t0
    stats = {
        "images": len(records),
        "seconds": round(elapsed, 3),
        "images_per_second": round(len(records) / elapsed, 3) if elapsed else None,
    }
    later = len(records) - min(kwargs.get("batch_size") or 1, len(records))
    if first is not None and later and elapsed > first:
        stats["first_batch_seconds"] = round(first, 3)
        stats["images_per_second_after_first_batch"] = round(later / (elapsed - first), 3)
        stats["stages_ms_after_first_batch"] = detector.timers.ms_per_image(since=warm)
    return results, stats


def detect_records(
    variant: str,
    runtime_path,
    records: list[ImageRecord],
    model: dict,
    resize_kernel: str,
    decode: str,
    postprocess: dict,
    batch_size: int,
    device: str,
    threads: int,
    torch_settings: dict | None,
    workers: int,
) -> tuple[list, dict]:
    """The variant's runner in a Detector over `records`: (record, detections) in record
    order, and the timing figures with the settings and the device that really ran (its
    name, and a PyTorch variant's dtype, compile mode and CUDA graphs). `workers`: batches in
    the Detector at once (infer_images' in_flight)."""
    runner = open_runner(
        variant, runtime_path, model, threads, device, batch_size, torch_settings=torch_settings
    )
    detector = Detector(
        runner, model["arch"], model["image_size"], PostprocessSettings(**postprocess)
    )
    results, stats = run_inference(
        records,
        detector,
        resize_kernel=resize_kernel,
        batch_size=batch_size,
        workers=threads,
        decode=decode,
        device=device,
        in_flight=workers,
    )
    log.info("%s: stages %s ms/image", variant, detector.timers.ms_per_image())
    settings = runner_settings(runner)
    stats.update(
        variant=variant,
        threads=threads,
        workers=workers,
        batch_size=batch_size,
        device=runner.device,
        device_name=settings["device_name"],
        runner=settings,
        decode=decode,
        stages_ms=detector.timers.ms_per_image(),
    )
    return results, stats


def write_outputs(
    outputs: dict[str, str | os.PathLike],
    results,
    names: list[str],
    draw_images: int,
    draw_min_score: float,
) -> None:
    """outputs["detections"], ["txt"], ["drawn"] of the whole split's results, in order."""
    write_detections_json(outputs["detections"], results)
    write_txt_files(outputs["txt"], results, names)
    draw_detections(outputs["drawn"], results, names, draw_images, draw_min_score)


def named_classes(data: dict, annotations, model: dict) -> list[str]:
    """The dataset's class names; refused before any image runs when the model predicts more
    classes than the dataset names (its labels would have no name, no category to score)."""
    names = class_names(data)
    if model["num_classes"] > len(names):
        raise SettingError(
            "num_classes",
            model["num_classes"],
            f"at most the {len(names)} classes that {annotations} names (is the model trained "
            "for another dataset?)",
        )
    return names


def infer_variant(
    variant: str,
    runtime_path,
    annotations,
    image_dir,
    outputs: dict[str, str | os.PathLike],
    model: dict,
    resize_kernel: str,
    decode: str,
    postprocess: dict,
    batch_size: int,
    device: str,
    threads: int,
    draw_images: int,
    draw_min_score: float,
    torch_settings: dict,
    workers: int,
) -> dict:
    """Write outputs["detections"], ["txt"], ["drawn"], ["stats"]; return the stats.

    The settings are the config's (preprocessing, post-processing, inference, the PyTorch
    runner's): no defaults here, config/config.yaml holds them.
    """
    data = load_annotations(annotations)
    names = named_classes(data, annotations, model)
    records = image_records(data, image_dir)
    results, stats = detect_records(
        variant, runtime_path, records, model, resize_kernel, decode, postprocess, batch_size,
        device, threads, torch_settings, workers,
    )  # fmt: skip
    write_outputs(outputs, results, names, draw_images, draw_min_score)
    write_json(outputs["stats"], stats)
    return stats


def infer_shard(
    variant: str,
    runtime_path,
    annotations,
    image_dir,
    shard: str,
    outputs: dict[str, str | os.PathLike],
    model: dict,
    resize_kernel: str,
    decode: str,
    postprocess: dict,
    batch_size: int,
    device: str,
    threads: int,
    torch_settings: dict | None,
    workers: int,
) -> dict:
    """One shard (`i-of-n`, Snakemake's scatteritem) of `infer_variant`: its range of the
    evaluation images, whole batches of `batch_size` (shards.shard_items) ->
    outputs["detections"] (.npz) and ["stats"]; return the stats. `device` cuda becomes the
    shard's GPU (shards.shard_device).
    """
    index, count = parse_shard(shard)
    data = load_annotations(annotations)
    named_classes(data, annotations, model)
    records = image_records(data, image_dir)
    mine = list(shard_items(records, index, count, batch_size))
    if not mine:
        log.warning("shard %s runs no image: %d shards for %d images", shard, count, len(records))
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    device = shard_device(device, index, gpus)
    log.info("shard %s: images %d of %d, device %s", shard, len(mine), len(records), device)
    started = time.time()
    results, stats = detect_records(
        variant, runtime_path, mine, model, resize_kernel, decode, postprocess, batch_size,
        device, threads, torch_settings, workers,
    )  # fmt: skip
    write_shard_detections(outputs["detections"], [r.id for r in mine], [d for _, d in results])
    stats.update(shard=shard, started=round(started, 3), finished=round(time.time(), 3))
    write_json(outputs["stats"], stats)
    return stats


def gather_shards(
    detections: list[str | os.PathLike],
    stats: list[str | os.PathLike],
    annotations,
    image_dir,
    outputs: dict[str, str | os.PathLike],
    batch_size: int,
    draw_images: int,
    draw_min_score: float,
) -> dict:
    """The shards' `detections` and `stats` (in shard order; their shards' `batch_size`) ->
    the outputs `infer_variant` writes. detections.json, txt/ and drawn/ are byte-identical
    to an unsharded run's (the same writers over the same detections in the same order);
    stats.json is the shards' records merged (shards.gather_stats). Return the merged stats.
    """
    if len(detections) != len(stats):
        raise ValueError(f"{len(detections)} shard detections for {len(stats)} shard stats")
    data = load_annotations(annotations)
    records = image_records(data, image_dir)
    results = gather_detections(detections, records, batch_size)
    write_outputs(outputs, results, class_names(data), draw_images, draw_min_score)
    merged = gather_stats([read_json(path) for path in stats])
    write_json(outputs["stats"], merged)
    return merged


def coco_results(results) -> list[dict]:
    """COCO results entries, sorted by image id then descending score (deterministic)."""
    entries = []
    for record, det in results:
        entries.extend(detections_to_coco(record.id, det["boxes"], det["scores"], det["labels"]))
    return entries


def write_detections_json(path: str | os.PathLike, results) -> None:
    write_json(path, coco_results(results), indent=None)


def write_txt_files(directory: str | os.PathLike, results, class_names: list[str]) -> None:
    """One <image stem>.txt per image: `class score xmin ymin xmax ymax` a line, original
    pixels, best first; an image without detections gets an empty file."""
    with atomic_path(directory) as tmp:
        tmp.mkdir(parents=True)
        for record, det in results:
            lines = [
                f"{class_names[label].replace(' ', '_')} {score:.6f} "
                + " ".join(f"{v:.2f}" for v in box)
                for box, score, label in zip(det["boxes"], det["scores"], det["labels"])
            ]
            text = "\n".join(lines) + ("\n" if lines else "")
            (tmp / f"{Path(record.path).stem}.txt").write_text(text)


def draw_detections(
    directory: str | os.PathLike,
    results,
    class_names: list[str],
    count: int,
    min_score: float = 0.3,
) -> None:
    """The first `count` images with their detections above `min_score` drawn, as JPEGs."""
    from torchvision.utils import draw_bounding_boxes

    with atomic_path(directory) as tmp:
        tmp.mkdir(parents=True)
        for record, det in results[:count]:
            image = load_image(record.path)
            keep = det["scores"] >= min_score
            if keep.any():
                labels = [
                    f"{class_names[label]} {score:.2f}"
                    for label, score in zip(det["labels"][keep], det["scores"][keep])
                ]
                chw = torch.from_numpy(np.array(image)).permute(2, 0, 1)
                boxes = torch.from_numpy(det["boxes"][keep])
                drawn = draw_bounding_boxes(chw, boxes, labels, colors="red", width=2)
                image = Image.fromarray(drawn.permute(1, 2, 0).numpy())
            image.save(tmp / Path(record.path).name)
