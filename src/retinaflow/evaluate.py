"""COCO bbox scoring with pycocotools, reported as the 12 COCOeval stats by name plus the
seed's keys (bbox_mAP ... bbox_mAP_copypaste). Every image in the annotations counts,
including those without any detection."""

from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np
from tqdm import tqdm

STAT_NAMES = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)  # fmt: skip
SEED_KEYS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l")


def score_detections(
    annotations: str | os.PathLike,
    detections: list[dict],
    max_detections: int,
    progress: bool = False,
) -> dict:
    """COCOeval(iouType="bbox") of COCO-format detections against an annotations json.

    `max_detections` is COCOeval's last maxDets (the headline AP uses it; MLPerf: 100).
    """
    result, _ = evaluate_detections(annotations, detections, max_detections, progress)
    return result


def evaluate_detections(
    annotations: str | os.PathLike,
    detections: list[dict],
    max_detections: int,
    progress: bool = False,
) -> tuple[dict, dict | None]:
    """score_detections' result and COCOeval's accumulated arrays (precision_arrays; None when
    nothing was detected). `progress`: a bar of COCOeval's steps on stderr."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    # COCOeval's steps: load, evaluate, accumulate, summarize
    bar = tqdm(total=4, desc="score", unit="step", file=sys.stderr, disable=not progress)
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
    bar.update()
    summary = io.StringIO()
    arrays = None
    if detections:
        with contextlib.redirect_stdout(summary):
            predicted = truth.loadRes(detections)
            evaluator = COCOeval(truth, predicted, iouType="bbox")
            evaluator.params.imgIds = sorted(truth.getImgIds())
            evaluator.params.maxDets = [1, 10, max_detections]
            evaluator.evaluate()
            bar.update()
            evaluator.accumulate()
            bar.update()
            evaluator.summarize()
            bar.update()
        stats = [float(s) for s in evaluator.stats]
        arrays = precision_arrays(evaluator)
    else:  # loadRes rejects an empty list; nothing detected scores zero
        stats = [0.0] * len(STAT_NAMES)
        bar.update(3)
    bar.close()
    result = {name: value for name, value in zip(SEED_KEYS, stats)}
    result["bbox_mAP_copypaste"] = " ".join(f"{v:.3f}" for v in stats[:6])
    result["stats"] = dict(zip(STAT_NAMES, stats, strict=True))
    result["num_images"] = len(truth.getImgIds())
    result["num_detections"] = len(detections)
    result["max_detections"] = max_detections
    # the 12 summary lines only: the rest of pycocotools' output carries timings
    lines = summary.getvalue().splitlines()
    result["coco_summary"] = [line.strip() for line in lines if line.lstrip().startswith("Average")]
    return result, arrays


def precision_arrays(evaluator) -> dict[str, np.ndarray]:
    """COCOeval's accumulated precision [T, R, K, A, M] and recall [T, K, A, M] (-1 where a
    class has no ground truth) with their axes: IoU thresholds, recall thresholds, category
    ids, area ranges, maxDets."""
    p = evaluator.params
    return {
        "precision": np.asarray(evaluator.eval["precision"], dtype=np.float32),
        "recall": np.asarray(evaluator.eval["recall"], dtype=np.float32),
        "iou_thresholds": np.asarray(p.iouThrs, dtype=np.float64),
        "recall_thresholds": np.asarray(p.recThrs, dtype=np.float64),
        "category_ids": np.asarray(p.catIds, dtype=np.int64),
        "area_ranges": np.asarray(p.areaRngLbl),
        "max_detections": np.asarray(p.maxDets, dtype=np.int64),
    }


def write_precision_arrays(path: str | os.PathLike, arrays: dict | None) -> None:
    """The arrays as a compressed .npz (an empty file's arrays: no detection at all)."""
    from .io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **(arrays or {}))


def read_precision_arrays(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """write_precision_arrays' arrays; None for a variant that detected nothing."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    return arrays or None


def detections_to_coco(image_id: int, boxes: np.ndarray, scores, labels) -> list[dict]:
    """xyxy boxes -> COCO results entries (xywh, category_id = label: no inverse map)."""
    out = []
    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
        out.append(
            {
                "image_id": image_id,
                "category_id": int(label),
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "score": float(score),
            }
        )
    return out


def score_file(
    annotations, detections_path, out_path, max_detections: int, arrays_path=None
) -> dict:
    """Score a detections json and write results/map_{variant}.json (and, given arrays_path,
    COCOeval's precision arrays: results/map_{variant}.npz)."""
    from .io import read_json, write_json

    result, arrays = evaluate_detections(
        annotations, read_json(detections_path), max_detections, progress=True
    )
    result["detections_file"] = str(detections_path)
    if arrays_path is not None:
        write_precision_arrays(arrays_path, arrays)
    write_json(out_path, result)
    return result
