"""The dataset step for every source, ending in the DAG's layout: data/{dataset}/annotations.json
and data/{dataset}/images/.

Downloads land in a cache folder in the MLPerf layout (<cache>/annotations/, <cache>/validation/
data/), outside Snakemake's outputs, so that a rerun or a config change never downloads again
what is complete and verified; the DAG's image folder holds hard links to it (symlinks across
filesystems).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import DatasetError
from ..io import atomic_path, read_json

SOURCES = ("demo", "direct", "fiftyone", "local")
LAYOUT_DIRS = {"validation": "validation", "calibration": "calibration"}


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


def publish_dataset(json_path: Path, image_dir: Path, annotations_out, images_out) -> int:
    """Copy the annotations json and link its images into the DAG's layout; return the count."""
    data = read_json(json_path)
    names = [img["file_name"] for img in data["images"]]
    link_images(image_dir, names, images_out)
    with atomic_path(annotations_out) as tmp:
        shutil.copyfile(json_path, tmp)
    return len(names)


def prepare_openimages(
    source: str,
    annotations_out,
    images_out,
    *,
    layout: str = "validation",
    cache_root=None,
    local_root=None,
    max_images: int | None = None,
    seed: int = 42,
    urls: dict | None = None,
    zoo_dir=None,
    download: dict | None = None,
    config_prefix: str = "dataset",
) -> int:
    """Fetch (direct | fiftyone) or check (local) the MLPerf validation or calibration set, then
    publish it into the DAG's layout. Returns the number of images."""
    from . import openimages

    urls = {k: v for k, v in (urls or {}).items() if v}
    download = download or {}
    fetch = {
        "workers": download.get("workers", 16),
        "retries": download.get("retries", 4),
        "timeout": download.get("timeout_s", 60.0),
    }
    calibration = layout == "calibration"
    if source == "local":
        if not local_root:
            raise DatasetError(
                f"config key {config_prefix}.local_root must name a folder in the MLPerf layout "
                f"when {config_prefix}.source is local"
            )
        root = Path(local_root)
        json_path = openimages.check_local(
            root, layout=layout, config_key=f"{config_prefix}.local_root"
        )
    elif source == "direct":
        root = Path(cache_root)
        url_args = {
            "boxes_url": urls.get("boxes"),
            "class_map_url": urls.get("class_map"),
            "images_url": urls.get("images"),
        }
        url_args = {k: v for k, v in url_args.items() if v}
        if calibration:
            json_path = openimages.fetch_calibration_direct(
                root, config_prefix=config_prefix, **url_args, **fetch
            )
        else:
            json_path = openimages.fetch_direct(
                root,
                max_images=max_images,
                seed=seed,
                config_prefix=config_prefix,
                **url_args,
                **fetch,
            )
    elif source == "fiftyone":
        from . import fiftyone_source

        root = Path(cache_root)
        if calibration:
            json_path = fiftyone_source.fetch_calibration_fiftyone(
                root, zoo_dir=zoo_dir, config_prefix=config_prefix
            )
        else:
            url_args = {"boxes_url": urls.get("boxes"), "class_map_url": urls.get("class_map")}
            json_path = fiftyone_source.fetch_fiftyone(
                root,
                max_images=max_images,
                seed=seed,
                zoo_dir=zoo_dir,
                config_prefix=config_prefix,
                **{k: v for k, v in url_args.items() if v},
            )
    else:
        raise DatasetError(
            f"config key {config_prefix}.source must be one of direct, fiftyone, local; "
            f"got {source!r}"
        )
    return publish_dataset(
        Path(json_path), root / LAYOUT_DIRS[layout] / "data", annotations_out, images_out
    )
