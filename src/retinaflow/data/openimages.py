"""OpenImages v6, MLPerf subset: the 264 classes, the calibration list, and openimages-mlperf.json
built as MLCommons' tools/openimages.py builds it, from the box CSV, the class map and the images.

Where the result differs from MLCommons' tool, on purpose:
- `max_images` samples WITHOUT replacement (MLCommons' np.random.choice draws duplicates, which
  then duplicate annotations);
- annotations are sorted by ImageID with a stable sort, so the boxes of one image keep their CSV
  order (MLCommons' default sort shuffles them; each box gets the same id either way);
- width/height come from the JPEG header plus its EXIF orientation: what MLCommons' cv2.imread
  reports, without decoding every image a second time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import DatasetError, ImageError
from ..io import atomic_path
from .download import decode_check, download_file, fetch_images

VALIDATION_BOXES_URL = (
    "https://storage.googleapis.com/openimages/v5/validation-annotations-bbox.csv"
)
TRAIN_BOXES_URL = "https://storage.googleapis.com/openimages/v6/oidv6-train-annotations-bbox.csv"
CLASS_MAP_URL = "https://storage.googleapis.com/openimages/v5/class-descriptions-boxable.csv"
IMAGES_URL = "https://open-images-dataset.s3.amazonaws.com"  # bucket open-images-dataset

FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")
BOX_COORDS = ("XMin", "XMax", "YMin", "YMax")
# The box table every source produces: relative boxes as OpenImages/fiftyone store them.
TABLE_COLUMNS = ("ImageID", "DisplayName", "XMin", "YMin", "BoxWidth", "BoxHeight", *FLAGS)
ANNOTATIONS_JSON = {
    "validation": "openimages-mlperf.json",
    "calibration": "openimages-calibration-mlperf.json",
}
_EXIF_ORIENTATION = 0x0112


def mlperf_classes() -> list[str]:
    """The 264 MLPerf class names; category id i is the i-th name."""
    text = resources.files("retinaflow").joinpath("resources/mlperf_classes.txt").read_text()
    return text.splitlines()


def mlperf_calibration_list() -> list[str]:
    """The 500 ImageIDs (TRAIN split) of MLPerf's openimages_cal_images_list.txt."""
    ref = resources.files("retinaflow").joinpath("resources/openimages_cal_images_list.txt")
    return _image_ids(ref.read_text().splitlines())


def read_image_list(path: str | os.PathLike) -> list[str]:
    """ImageIDs from a list file, one `<ImageID>.jpg` (or bare ImageID) a line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image list {path} does not exist: fix the path in the config")
    return _image_ids(path.read_text().splitlines())


def _image_ids(lines: Iterable[str]) -> list[str]:
    return [line.strip().removesuffix(".jpg") for line in lines if line.strip()]


def read_class_map(path: str | os.PathLike) -> dict[str, str]:
    """LabelName -> DisplayName from class-descriptions-boxable.csv (two columns, no header)."""
    frame = pd.read_csv(
        path, header=None, names=["LabelName", "DisplayName"], dtype=str, keep_default_na=False
    )
    return dict(zip(frame["LabelName"], frame["DisplayName"], strict=True))


def read_boxes(
    path: str | os.PathLike,
    class_map: dict[str, str],
    classes: Sequence[str],
    image_ids: Iterable[str] | None = None,
    chunksize: int = 1_000_000,
) -> pd.DataFrame:
    """The boxes of `classes` in an OpenImages box CSV, in file order, as a box table.

    Read in chunks, keeping only the needed columns and rows: the train CSV is 2.2 GB.
    """
    path = Path(path)
    header = pd.read_csv(path, nrows=0).columns
    missing = [c for c in ("ImageID", "LabelName", *BOX_COORDS, *FLAGS) if c not in header]
    if missing:
        raise DatasetError(
            f"box CSV {path} lacks columns {missing}: it is not an OpenImages "
            "*-annotations-bbox.csv file (check the boxes URL or path in the config)"
        )
    keep = {label for label, name in class_map.items() if name in set(classes)}
    wanted = set(image_ids) if image_ids is not None else None
    dtypes = {"ImageID": str, "LabelName": str} | dict.fromkeys(BOX_COORDS, "float64")
    chunks = []
    reader = pd.read_csv(
        path,
        usecols=["ImageID", "LabelName", *BOX_COORDS, *FLAGS],
        dtype=dtypes,
        chunksize=chunksize,
    )
    for chunk in reader:
        chunk = chunk[chunk["LabelName"].isin(keep)]
        if wanted is not None:
            chunk = chunk[chunk["ImageID"].isin(wanted)]
        chunks.append(chunk)
    boxes = pd.concat(chunks, ignore_index=True)
    table = pd.DataFrame(
        {
            "ImageID": boxes["ImageID"],
            "DisplayName": boxes["LabelName"].map(class_map),
            "XMin": boxes["XMin"],
            "YMin": boxes["YMin"],
            "BoxWidth": boxes["XMax"] - boxes["XMin"],
            "BoxHeight": boxes["YMax"] - boxes["YMin"],
        }
    )
    for flag in FLAGS:
        table[flag] = boxes[flag].astype("int64")
    return table


def eligible_images(table: pd.DataFrame, classes: Sequence[str]) -> list[str]:
    """Sorted ImageIDs holding at least one box of `classes` (24,781 in the full validation)."""
    return sorted(table.loc[table["DisplayName"].isin(set(classes)), "ImageID"].unique())


def select_images(
    image_ids: Sequence[str],
    max_images: int | None,
    seed: int,
    config_key: str = "dataset.max_images",
) -> list[str]:
    """A seeded subset of `max_images` ids drawn WITHOUT replacement, sorted; all when None.

    The ids are sorted first, so the subset depends only on the set of ids and the seed.
    """
    ids = sorted(set(image_ids))
    if max_images is None:
        return ids
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise DatasetError(
            f"config key {config_key} must be a positive integer or null, got {max_images!r}"
        )
    if max_images >= len(ids):
        return ids
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(ids), size=max_images, replace=False)
    return [ids[i] for i in sorted(picked)]


def image_size(path: str | os.PathLike, *, decode: bool = False) -> tuple[int, int]:
    """(width, height) as cv2.imread reports it: EXIF orientations 5-8 swap the two.

    With decode, the whole image is decoded too, so a truncated file raises ImageError.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} is missing: rerun the dataset rule to fetch it again")
    if decode:
        decode_check(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(
            f"image {path} cannot be read ({err}): delete it and rerun the dataset rule"
        ) from err
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def image_sizes(
    paths: Sequence[Path], *, decode: bool = False, workers: int = 4
) -> list[tuple[int, int]]:
    """image_size of each path (threads: PIL decodes without the GIL); one error lists all."""

    def size_or_error(path: Path):
        try:
            return image_size(path, decode=decode)
        except ImageError as err:
            return err

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(size_or_error, paths))
    errors = [str(r) for r in results if isinstance(r, ImageError)]
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ImageError(f"{len(errors)} of {len(paths)} images are unusable:\n  {shown}{more}")
    return results


def build_mlperf_json(
    table: pd.DataFrame,
    classes: Sequence[str],
    image_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    image_ids: Iterable[str] | None = None,
    decode: bool = False,
    workers: int = 4,
) -> Path:
    """Write openimages-mlperf.json from a box table and the images, by MLCommons' rules.

    categories: ids 0..K-1 in class order. Boxes: those of `classes` on `image_ids` (all when
    None), annotation id = position in the table + 1, then sorted by ImageID (stable). Image
    ids: factorize of the ImageID Series + 1 (hex order). bbox: absolute xywh from the image
    size; area w*h; iscrowd = IsGroupOf; the five flags kept. Serialised as MLCommons'
    json.dump does (no indent, no trailing newline).
    """
    image_dir = Path(image_dir)
    category = {name: i for i, name in enumerate(classes)}
    boxes = table[table["DisplayName"].isin(category.keys())]
    if image_ids is not None:
        boxes = boxes[boxes["ImageID"].isin(set(image_ids))]
    if boxes.empty:
        raise DatasetError(
            f"no boxes of the {len(classes)} classes on the selected images: the box CSV or the "
            "image selection is wrong (check the dataset config)"
        )
    boxes = boxes.reset_index(drop=True).sort_values("ImageID", kind="stable")
    codes, names = pd.factorize(boxes["ImageID"])
    paths = [image_dir / f"{name}.jpg" for name in names]
    sizes = np.array(image_sizes(paths, decode=decode, workers=workers), dtype=np.int64)
    width, height = sizes[codes, 0], sizes[codes, 1]
    x = (boxes["XMin"].to_numpy() * width).tolist()
    y = (boxes["YMin"].to_numpy() * height).tolist()
    w = boxes["BoxWidth"].to_numpy() * width
    h = boxes["BoxHeight"].to_numpy() * height
    area = (w * h).tolist()
    w, h = w.tolist(), h.tolist()
    flags = {flag: boxes[flag].astype("int64").tolist() for flag in FLAGS}
    cats = boxes["DisplayName"].map(category).tolist()
    ann_ids = boxes.index.to_numpy().tolist()
    image_index = codes.tolist()
    annotations = [
        {
            "id": ann_ids[i] + 1,
            "image_id": image_index[i] + 1,
            "category_id": cats[i],
            "bbox": [x[i], y[i], w[i], h[i]],
            "area": area[i],
            "iscrowd": flags["IsGroupOf"][i],
            "IsOccluded": flags["IsOccluded"][i],
            "IsInside": flags["IsInside"][i],
            "IsDepiction": flags["IsDepiction"][i],
            "IsTruncated": flags["IsTruncated"][i],
            "IsGroupOf": flags["IsGroupOf"][i],
        }
        for i in range(len(ann_ids))
    ]
    images = [
        {
            "id": i + 1,
            "file_name": f"{name}.jpg",
            "height": int(sizes[i, 1]),
            "width": int(sizes[i, 0]),
            "license": None,
            "coco_url": None,
        }
        for i, name in enumerate(names)
    ]
    coco = {
        "info": {"dataset": "openimages_mlperf", "version": "v6"},
        "licenses": [],
        "categories": [{"id": i, "name": n, "supercategory": None} for i, n in enumerate(classes)],
        "images": images,
        "annotations": annotations,
    }
    with atomic_path(output) as tmp:
        with open(tmp, "w") as f:
            json.dump(coco, f)
    return Path(output)


def _url_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def fetch_csvs(
    annotations_dir: str | os.PathLike,
    *,
    boxes_url: str,
    class_map_url: str,
    config_prefix: str,
    retries: int = 4,
    timeout: float = 60.0,
) -> tuple[Path, Path]:
    """Download (once) the box CSV and the class map into `annotations_dir`."""
    annotations_dir = Path(annotations_dir)
    boxes = download_file(
        boxes_url,
        annotations_dir / _url_name(boxes_url),
        config_key=f"{config_prefix}.urls.boxes",
        retries=retries,
        timeout=timeout,
        progress=True,
    )
    class_map = download_file(
        class_map_url,
        annotations_dir / _url_name(class_map_url),
        config_key=f"{config_prefix}.urls.class_map",
        retries=retries,
        timeout=timeout,
    )
    return boxes, class_map


def fetch_direct(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    max_images: int | None = None,
    seed: int = 42,
    boxes_url: str = VALIDATION_BOXES_URL,
    class_map_url: str = CLASS_MAP_URL,
    images_url: str = IMAGES_URL,
    workers: int = 16,
    retries: int = 4,
    timeout: float = 60.0,
    config_prefix: str = "dataset",
) -> Path:
    """The MLPerf validation set from the public CSVs and bucket, in the MLPerf layout.

    Writes <root>/annotations/{box csv, class map, openimages-mlperf.json} and
    <root>/validation/data/<ImageID>.jpg; returns the json path. Reruns fetch only what is
    missing. URLs may be local paths (files fetched by hand).
    """
    classes = list(classes) if classes is not None else mlperf_classes()
    root = Path(root)
    boxes_csv, class_map_csv = fetch_csvs(
        root / "annotations",
        boxes_url=boxes_url,
        class_map_url=class_map_url,
        config_prefix=config_prefix,
        retries=retries,
        timeout=timeout,
    )
    table = read_boxes(boxes_csv, read_class_map(class_map_csv), classes)
    ids = select_images(
        eligible_images(table, classes), max_images, seed, f"{config_prefix}.max_images"
    )
    return _fetch_and_build(
        root / "validation" / "data",
        root / "annotations" / ANNOTATIONS_JSON["validation"],
        [(f"{images_url.rstrip('/')}/validation/{i}.jpg", i) for i in ids],
        table=table,
        classes=classes,
        config_prefix=config_prefix,
        fetch_options={"workers": workers, "retries": retries, "timeout": timeout},
    )


def fetch_calibration_direct(
    root: str | os.PathLike,
    *,
    image_ids: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    boxes_url: str = TRAIN_BOXES_URL,
    class_map_url: str = CLASS_MAP_URL,
    images_url: str = IMAGES_URL,
    workers: int = 16,
    retries: int = 4,
    timeout: float = 60.0,
    config_prefix: str = "calibration",
) -> Path:
    """MLPerf's calibration images (TRAIN split; default: the 500 of the MLPerf list).

    Writes <root>/calibration/data/<ImageID>.jpg and
    <root>/annotations/openimages-calibration-mlperf.json; returns the json path. Images of the
    list without a box of the classes are downloaded but, as in MLCommons, absent from the json.
    """
    classes = list(classes) if classes is not None else mlperf_classes()
    ids = sorted(set(image_ids if image_ids is not None else mlperf_calibration_list()))
    root = Path(root)
    boxes_csv, class_map_csv = fetch_csvs(
        root / "annotations",
        boxes_url=boxes_url,
        class_map_url=class_map_url,
        config_prefix=config_prefix,
        retries=retries,
        timeout=timeout,
    )
    table = read_boxes(boxes_csv, read_class_map(class_map_csv), classes, image_ids=ids)
    return _fetch_and_build(
        root / "calibration" / "data",
        root / "annotations" / ANNOTATIONS_JSON["calibration"],
        [(f"{images_url.rstrip('/')}/train/{i}.jpg", i) for i in ids],
        table=table,
        classes=classes,
        config_prefix=config_prefix,
        fetch_options={"workers": workers, "retries": retries, "timeout": timeout},
    )


def _fetch_and_build(
    image_dir: Path,
    output: Path,
    sources: list[tuple[str, str]],
    *,
    table: pd.DataFrame,
    classes: Sequence[str],
    config_prefix: str,
    fetch_options: dict,
) -> Path:
    """Fetch each (url, ImageID) into image_dir, then write the json for those images."""
    fetch_images(
        [(url, image_dir / f"{image_id}.jpg") for url, image_id in sources],
        config_key=f"{config_prefix}.urls.images (a folder holding <split>/<ImageID>.jpg), "
        f"or use {config_prefix}.source: local",
        desc=f"{image_dir.parent.name} images",
        **fetch_options,
    )
    ids = [image_id for _, image_id in sources]
    return build_mlperf_json(table, classes, image_dir, output, image_ids=ids)


def check_local(
    root: str | os.PathLike,
    *,
    layout: str = "validation",
    workers: int = 4,
    config_key: str = "dataset.local_root",
) -> Path:
    """Check an existing MLPerf-layout folder and return its annotations json.

    Every image the json lists must exist under <root>/<layout>/data, decode, and have the
    width/height the json gives; otherwise one error names the offending files.
    """
    root = Path(root)
    output = root / "annotations" / ANNOTATIONS_JSON[layout]
    if not output.is_file():
        raise DatasetError(
            f"{output} does not exist: config key {config_key} must name a folder in the MLPerf "
            f"layout (annotations/{ANNOTATIONS_JSON[layout]} and {layout}/data/*.jpg)"
        )
    try:
        with open(output) as f:
            coco = json.load(f)
        images = coco["images"]
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{output} is not a COCO annotations file ({err!r})") from err
    image_dir = root / layout / "data"
    paths = [image_dir / img["file_name"] for img in images]
    sizes = image_sizes(paths, decode=True, workers=workers)
    wrong = [
        f"{path}: json says {img['width']}x{img['height']}, file is {w}x{h}"
        for path, img, (w, h) in zip(paths, images, sizes, strict=True)
        if (img["width"], img["height"]) != (w, h)
    ]
    if wrong:
        shown = "\n  ".join(wrong[:10])
        raise DatasetError(
            f"{len(wrong)} images in {image_dir} do not match the sizes in {output} (rebuild the "
            f"json, or fetch the images again):\n  {shown}"
        )
    return output
