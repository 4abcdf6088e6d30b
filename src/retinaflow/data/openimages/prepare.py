"""The dataset step for every source, ending in the DAG's layout: data/{dataset}/annotations.json
and data/{dataset}/images/.

Downloads land in a cache folder in the MLPerf layout (<cache>/annotations/, <cache>/<split>/
data/), outside Snakemake's outputs, so that a rerun or a config change never downloads again
what is complete and verified; the DAG's image folder holds hard links to it (symlinks across
filesystems).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...errors import DatasetError, SettingError
from ...io import atomic_path, read_json
from .direct_source import fetch_direct
from .fiftyone_source import fetch_fiftyone
from .local_source import check_local
from .settings import OpenImagesSettings
from .splits import Split, split_named

# One fetcher per source, each (split, settings) -> the split's json in the MLPerf layout.
FETCHERS = {"direct": fetch_direct, "fiftyone": fetch_fiftyone, "local": check_local}


def prepare_openimages(
    split: str | Split, settings: OpenImagesSettings, annotations_out, images_out
) -> int:
    """Fetch (direct | fiftyone) or check (local) the MLPerf `split` (validation |
    calibration), then publish it into the DAG's layout. Returns the number of images."""
    split = split_named(split)
    fetch = FETCHERS.get(settings.source)
    if fetch is None:
        raise SettingError("source", settings.source, f"one of {', '.join(FETCHERS)}")
    json_path = Path(fetch(split, settings))
    root = json_path.parent.parent  # every source's MLPerf layout: <root>/annotations/<json>
    return publish_dataset(json_path, split.image_dir(root), annotations_out, images_out)


def publish_dataset(json_path: Path, image_dir: Path, annotations_out, images_out) -> int:
    """Copy the annotations json and link its images into the DAG's layout; return the count."""
    data = read_json(json_path)
    names = [img["file_name"] for img in data["images"]]
    link_images(image_dir, names, images_out)
    with atomic_path(annotations_out) as tmp:
        shutil.copyfile(json_path, tmp)
    return len(names)


def link_images(image_dir: Path, names: list[str], out_dir: str | os.PathLike) -> None:
    """A folder holding exactly `names` from image_dir, as hard links (or symlinks)."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for name in names:
            src = image_dir / name
            if not src.is_file():
                raise DatasetError(f"image {src} listed in the annotations is missing")
            try:
                os.link(src, tmp / name)
            except OSError:
                (tmp / name).symlink_to(src.resolve())
