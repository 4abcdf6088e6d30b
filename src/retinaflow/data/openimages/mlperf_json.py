"""openimages-mlperf.json built as MLCommons' tools/openimages.py builds it, from a box table and
the images; every source ends here, so they all write the same bytes for the same content.

Where the result differs from MLCommons' tool, on purpose:
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
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ...errors import DatasetError, ImageError
from ...io import atomic_path
from ..download import decode_check
from .tables import FLAGS

DECODE_WORKERS = 4  # threads that read image sizes (PIL decodes without the GIL)
_EXIF_ORIENTATION = 0x0112


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
    paths: Sequence[Path], *, decode: bool = False, workers: int = DECODE_WORKERS
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
    workers: int = DECODE_WORKERS,
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
