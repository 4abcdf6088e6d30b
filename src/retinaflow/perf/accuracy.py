"""The accuracy log in MLPerf's RetinaNet format and its scoring.

Each LoadGen response is float32 rows of 7: sample index, ymin, xmin, ymax, xmax, score,
label; boxes normalised to the model input ([0,1]), label = category id. LoadGen writes them
hex-encoded to mlperf_log_accuracy.json; MLPerf's tools/accuracy-openimages.py maps the sample
index to the json's `images` array, scales the boxes by that image's width and height (in
float32) and runs COCOeval. This module does the same, then evaluate.score_detections, so the
mAP is comparable with results/map_{variant}.json.
"""

from __future__ import annotations

import os

import numpy as np

from ..evaluate import score_detections
from ..io import read_json

FIELDS = ("sample_index", "ymin", "xmin", "ymax", "xmax", "score", "label")


def encode_detections(sample_index: int, boxes, scores, labels) -> np.ndarray:
    """One sample's response payload: float32 [n*7], boxes given as normalised xyxy."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    rows = np.empty((len(boxes), 7), dtype=np.float32)
    rows[:, 0] = sample_index
    rows[:, 1:5] = boxes[:, [1, 0, 3, 2]]
    rows[:, 5] = np.asarray(scores, dtype=np.float32)
    rows[:, 6] = np.asarray(labels)
    return rows.reshape(-1)


def read_accuracy_log(path: str | os.PathLike) -> dict[int, np.ndarray]:
    """{sample index: float32 rows [n, 7]}; a sample logged twice keeps its first response,
    as MLPerf's script does."""
    try:
        entries = read_json(path)
    except ValueError as err:
        raise ValueError(f"accuracy log {path} is not valid JSON (a crashed run?): {err}") from err
    samples: dict[int, np.ndarray] = {}
    for entry in entries:
        index = int(entry["qsl_idx"])
        if index in samples:
            continue
        data = np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.float32)
        if data.size % 7:
            raise ValueError(
                f"accuracy log {path}: sample {index} holds {data.size} float32, not a multiple "
                "of 7 (sample index, ymin, xmin, ymax, xmax, score, label)"
            )
        rows = data.reshape(-1, 7)
        wrong = rows[:, 0] != index
        if wrong.any():
            raise ValueError(
                f"accuracy log {path}: sample {index} carries detections of sample "
                f"{int(rows[wrong][0, 0])}: the system under test mixed up its responses"
            )
        samples[index] = rows
    return samples


def accuracy_to_coco(samples: dict[int, np.ndarray], images: list[dict]) -> list[dict]:
    """COCO results entries (original pixels, xywh), images in sample-index order."""
    entries = []
    for index in sorted(samples):
        if index >= len(images):
            raise ValueError(
                f"accuracy log names sample {index} but the annotations hold {len(images)} "
                "images: score it against the annotations it was run on"
            )
        image = images[index]
        rows = samples[index]
        height, width = np.float32(image["height"]), np.float32(image["width"])
        ymin, xmin = rows[:, 1] * height, rows[:, 2] * width
        ymax, xmax = rows[:, 3] * height, rows[:, 4] * width
        columns = (xmin, ymin, xmax - xmin, ymax - ymin, rows[:, 5], rows[:, 6])
        for x, y, w, h, score, label in zip(*(c.tolist() for c in columns)):
            entries.append(
                {
                    "image_id": image["id"],
                    "category_id": int(label),
                    "bbox": [x, y, w, h],
                    "score": score,
                }
            )
    return entries


def score_accuracy_log(
    accuracy_json: str | os.PathLike, annotations: str | os.PathLike, max_detections: int
) -> dict:
    """COCO mAP of a LoadGen accuracy log: evaluate.score_detections' record plus the log's
    path and sample count. Every image counts, so the log must cover all of them."""
    images = read_json(annotations)["images"]
    samples = read_accuracy_log(accuracy_json)
    if len(samples) != len(images):
        raise ValueError(
            f"accuracy log {accuracy_json} covers {len(samples)} of the {len(images)} images "
            f"in {annotations}: rerun LoadGen in AccuracyOnly mode on the same annotations"
        )
    result = score_detections(annotations, accuracy_to_coco(samples, images), max_detections)
    result["accuracy_log"] = str(accuracy_json)
    result["samples"] = len(samples)
    return result


def score_accuracy_file(accuracy_json, annotations, out_path, max_detections: int) -> dict:
    """Score an accuracy log and write results/map_loadgen_{variant}.json."""
    from ..io import write_json

    result = score_accuracy_log(accuracy_json, annotations, max_detections)
    write_json(out_path, result)
    return result
