"""Source direct: a split from OpenImages' public CSVs and image bucket, with retinaflow's own
downloader (resumed, retried, decode-checked), into the MLPerf layout under the cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..download import fetch_images
from .mlperf_json import build_mlperf_json
from .selection import listed_images, selected_images
from .settings import OpenImagesSettings
from .splits import Split, split_named
from .tables import fetch_csvs, mlperf_classes, read_boxes, read_class_map, url_name


def fetch_direct(
    split: str | Split,
    settings: OpenImagesSettings,
    *,
    classes: Sequence[str] | None = None,
    image_ids: Sequence[str] | None = None,
) -> Path:
    """Fetch `split` (validation | calibration) into settings.cache_root; return its json.

    Writes <cache>/annotations/{box csv, class map, split json} and
    <cache>/<split>/data/<ImageID>.jpg. Reruns fetch only what is missing; URLs may be local
    paths (files fetched by hand). The images are the split's list (calibration: MLPerf's 500,
    or `image_ids`), of which those without a box of the classes are downloaded but, as in
    MLCommons, absent from the json; or else the images of the box CSV holding such a box,
    subset by settings.max_images.
    """
    split = split_named(split)
    classes = list(classes) if classes is not None else mlperf_classes()
    root, urls = settings.cache_dir(), settings.urls_for(split)
    annotations = root / "annotations"
    boxes_csv, class_map_csv = fetch_csvs(
        urls,
        annotations / url_name(urls.boxes),
        annotations / url_name(urls.class_map),
        download=settings.downloads(),
    )
    ids = listed_images(split, image_ids)
    table = read_boxes(boxes_csv, read_class_map(class_map_csv), classes, image_ids=ids)
    if ids is None:
        ids = selected_images(table, classes, settings.max_images, settings.seed)
    image_dir = split.image_dir(root)
    fetch_images(
        [(split.image_url(urls.images, i), image_dir / f"{i}.jpg") for i in ids],
        setting="urls.images",  # a folder holding <split>/<ImageID>.jpg
        desc=f"{split.name} images",
        workers=settings.downloads().workers,
        retries=settings.downloads().retries,
        timeout=settings.downloads().timeout,
    )
    return build_mlperf_json(table, classes, image_dir, split.annotations_path(root), image_ids=ids)
