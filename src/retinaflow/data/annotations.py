"""Reading and checking annotations in the openimages-mlperf.json conventions.

The conventions (MLCommons' openimages_mlperf tool): category ids 0..K-1 in class-list order,
1-based image ids, absolute xywh boxes with area and iscrowd, width/height of each image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from ..io import read_json


@dataclass(frozen=True)
class ImageRecord:
    """One evaluation image: its 1-based id, its file and its original size."""

    id: int
    path: Path
    width: int
    height: int


def load_annotations(path: str | os.PathLike) -> dict:
    """Read an annotations json and check the conventions the pipeline relies on."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotations file {path} does not exist: run the dataset rule first")
    try:
        data = read_json(path)
    except ValueError as err:
        raise DatasetError(f"annotations file {path} is not valid JSON: {err}") from err
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(f"annotations file {path} has no '{key}' list (COCO format)")
    cat_ids = [c["id"] for c in data["categories"]]
    if cat_ids != list(range(len(cat_ids))):
        raise DatasetError(
            f"annotations file {path}: category ids must be 0..K-1 in class-list order, "
            f"got {cat_ids[:5]}..."
        )
    image_ids = {img["id"] for img in data["images"]}
    if min(image_ids, default=1) < 1:
        raise DatasetError(f"annotations file {path}: image ids must be 1-based")
    for ann in data["annotations"]:
        if ann["image_id"] not in image_ids:
            raise DatasetError(
                f"annotations file {path}: annotation {ann['id']} names image {ann['image_id']}, "
                "which is not in 'images'"
            )
        if ann["category_id"] not in range(len(cat_ids)):
            raise DatasetError(
                f"annotations file {path}: annotation {ann['id']} has category "
                f"{ann['category_id']}, expected 0..{len(cat_ids) - 1}"
            )
    return data


def image_records(annotations: dict, image_dir: str | os.PathLike) -> list[ImageRecord]:
    """The images in id order (the order of MLPerf's sample indices)."""
    image_dir = Path(image_dir)
    return [
        ImageRecord(img["id"], image_dir / img["file_name"], img["width"], img["height"])
        for img in sorted(annotations["images"], key=lambda img: img["id"])
    ]


def class_names(annotations: dict) -> list[str]:
    return [c["name"] for c in sorted(annotations["categories"], key=lambda c: c["id"])]
