"""COCO bbox scoring with pycocotools, reported as the 12 COCOeval stats by name plus the
seed's keys (bbox_mAP ... bbox_mAP_copypaste). Every image in the annotations counts,
including those without any detection."""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np

STAT_NAMES = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)  # fmt: skip
SEED_KEYS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l")


def score_detections(
    annotations: str | os.PathLike, detections: list[dict], max_detections: int
) -> dict:
    """COCOeval(iouType="bbox") of COCO-format detections against an annotations json.

    `max_detections` is COCOeval's last maxDets (the headline AP uses it; MLPerf: 100).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
    summary = io.StringIO()
    if detections:
        with contextlib.redirect_stdout(summary):
            predicted = truth.loadRes(detections)
            evaluator = COCOeval(truth, predicted, iouType="bbox")
            evaluator.params.imgIds = sorted(truth.getImgIds())
            evaluator.params.maxDets = [1, 10, max_detections]
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        stats = [float(s) for s in evaluator.stats]
    else:  # loadRes rejects an empty list; nothing detected scores zero
        stats = [0.0] * len(STAT_NAMES)
    result = {name: value for name, value in zip(SEED_KEYS, stats)}
    result["bbox_mAP_copypaste"] = " ".join(f"{v:.3f}" for v in stats[:6])
    result["stats"] = dict(zip(STAT_NAMES, stats, strict=True))
    result["num_images"] = len(truth.getImgIds())
    result["num_detections"] = len(detections)
    result["max_detections"] = max_detections
    # the 12 summary lines only: the rest of pycocotools' output carries timings
    lines = summary.getvalue().splitlines()
    result["coco_summary"] = [line.strip() for line in lines if line.lstrip().startswith("Average")]
    return result


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


def score_file(annotations, detections_path, out_path, max_detections: int) -> dict:
    """Score a detections json and write results/map_{variant}.json."""
    from .io import read_json, write_json

    result = score_detections(annotations, read_json(detections_path), max_detections)
    result["detections_file"] = str(detections_path)
    write_json(out_path, result)
    return result
