"""Inference over a dataset: preprocess -> runner (any backend) -> host post-processing.

Produces, per image, detections in original pixel coordinates; writers turn them into the
COCO results json, the seed's per-image txt files and, on request, images with boxes drawn.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .data.annotations import ImageRecord
from .data.images import iter_batches, load_image
from .evaluate import detections_to_coco
from .io import atomic_path, write_json
from .model.architectures import anchor_generator
from .model.head import NUM_LEVELS
from .postprocess import PostprocessSettings, level_anchors, postprocess_detections
from .runtime import HeadRunner


def infer_images(
    records: list[ImageRecord],
    runner: HeadRunner,
    arch: str,
    image_size: int,
    resize_kernel: str,
    batch_size: int,
    workers: int,
    settings: PostprocessSettings,
    progress: bool = True,
) -> Iterator[tuple[ImageRecord, dict[str, np.ndarray]]]:
    """Yield (record, detections) in record order; detections hold numpy boxes/scores/labels."""
    size = (image_size, image_size)
    generator = anchor_generator(arch)
    anchors = None
    paths = [r.path for r in records]
    bar = tqdm(total=len(records), desc="infer", unit="img", file=sys.stderr, disable=not progress)
    start = 0
    for batch in iter_batches(paths, size, resize_kernel, batch_size, workers):
        maps = [torch.from_numpy(np.asarray(m)) for m in runner(batch)]
        class_maps, box_maps = maps[:NUM_LEVELS], maps[NUM_LEVELS:]
        if anchors is None:
            anchors = level_anchors(generator, size, [tuple(m.shape[2:]) for m in class_maps])
        chunk = records[start : start + len(batch)]
        originals = [(r.height, r.width) for r in chunk]
        detections = postprocess_detections(
            class_maps, box_maps, anchors, size, originals, settings
        )
        for record, det in zip(chunk, detections, strict=True):
            yield record, {k: v.numpy() for k, v in det.items()}
        start += len(batch)
        bar.update(len(batch))
    bar.close()


def run_inference(records: list[ImageRecord], runner: HeadRunner, **kwargs) -> tuple[list, dict]:
    """All detections of a dataset, plus timing figures for the log."""
    t0 = time.perf_counter()
    results = list(infer_images(records, runner, **kwargs))
    elapsed = time.perf_counter() - t0
    stats = {
        "images": len(records),
        "seconds": round(elapsed, 3),
        "images_per_second": round(len(records) / elapsed, 3) if elapsed else None,
    }
    return results, stats


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
