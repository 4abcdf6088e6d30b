"""The MLPerf post-pass on a fiftyone dataset shaped as the zoo's open-images-v6 makes it: its
images linked into the MLPerf layout, its boxes into the same json builder as every source.

It reads each sample's relative boxes and flags from the dataset, the very values fiftyone's
COCO exporter reads, rather than an exported file: that export scales boxes by header sizes (no
EXIF orientation, unlike MLPerf's cv2) and numbers categories its own way, so a json rebuilt
from it could not be byte-identical to the direct source's. The media "export" hard-links (or
copies) the zoo's images into <root>/<split>/data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from ...io import atomic_path
from .mlperf_json import DECODE_WORKERS, build_mlperf_json
from .splits import Split, split_named
from .tables import FLAGS, TABLE_COLUMNS, mlperf_classes


def dataset_table(dataset, label_field: str = "detections") -> pd.DataFrame:
    """The box table (see tables.TABLE_COLUMNS) of a dataset shaped as the zoo makes it.

    Samples are taken in ImageID order, the boxes of one sample in their stored order, so the
    table lines up with the box CSV (sorted by ImageID) that the direct source reads.
    """
    image_ids = _sample_image_ids(dataset)
    detections = dataset.values(f"{_detections_field(dataset, label_field)}.detections")
    rows = []
    for image_id, dets in sorted(zip(image_ids, detections, strict=True), key=lambda p: p[0]):
        for det in dets or []:
            x, y, w, h = det.bounding_box
            try:
                flags = [int(bool(det[flag])) for flag in FLAGS]
            except KeyError as err:
                raise DatasetError(
                    f"fiftyone dataset {dataset.name!r}: a detection of image {image_id} has no "
                    f"attribute {err}: load it with the zoo's open-images-v6 (label_types "
                    "detections), which keeps the five OpenImages flags"
                ) from err
            rows.append((image_id, det.label, x, y, w, h, *flags))
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _detections_field(dataset, preferred: str) -> str:
    """`preferred` if the dataset has it, else its one Detections field (fiftyone names a lone
    label type "ground_truth" unless told otherwise)."""
    if dataset.has_sample_field(preferred):
        return preferred
    from fiftyone.core.labels import Detections

    fields = [
        name
        for name, field in dataset.get_field_schema().items()
        if getattr(field, "document_type", None) is Detections
    ]
    if len(fields) != 1:
        raise DatasetError(
            f"fiftyone dataset {dataset.name!r} has no field {preferred!r} and "
            f"{len(fields)} Detections fields {fields}: load it with label_field={preferred!r}"
        )
    return fields[0]


def _sample_image_ids(dataset) -> list[str]:
    if dataset.has_sample_field("open_images_id"):
        ids = dataset.values("open_images_id")
        if all(ids):
            return ids
    return [Path(p).stem for p in dataset.values("filepath")]


def place_images(dataset, image_dir: str | os.PathLike) -> list[str]:
    """Put each sample's image at <image_dir>/<ImageID>.jpg (hard link, or copy) and return
    the ImageIDs; an image already there is left alone."""
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    image_ids = _sample_image_ids(dataset)
    for image_id, src in zip(image_ids, dataset.values("filepath"), strict=True):
        dest = image_dir / f"{image_id}.jpg"
        if dest.exists():
            continue
        if not Path(src).is_file():
            raise DatasetError(
                f"fiftyone sample {image_id} points at {src}, which does not exist: reload the "
                "zoo dataset (delete its folder to fetch it again)"
            )
        with atomic_path(dest) as tmp:
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
    return image_ids


def build_from_dataset(
    dataset,
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    split: str | Split = "validation",
    image_ids: Sequence[str] | None = None,
    label_field: str = "detections",
    workers: int = DECODE_WORKERS,
) -> Path:
    """The MLPerf post-pass on a loaded fiftyone dataset: images into <root>/<split>/data,
    then the shared builder writes <root>/annotations/<split json>. Each image is decoded
    (the zoo's downloads are not checked otherwise). Returns the json path."""
    split = split_named(split)
    classes = list(classes) if classes is not None else mlperf_classes()
    image_dir = split.image_dir(root)
    placed = place_images(dataset, image_dir)
    return build_mlperf_json(
        dataset_table(dataset, label_field),
        classes,
        image_dir,
        split.annotations_path(root),
        image_ids=image_ids if image_ids is not None else placed,
        decode=True,
        workers=workers,
    )
