"""OpenImages' tables as the sources read them: the box CSV and class map (fetched once), the box
table every source produces, and the two lists MLPerf ships (its 264 classes, its calibration
images) as package resources."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

from ...errors import DatasetError
from ..download import download_file
from .settings import DownloadSettings, SourceUrls

FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")
BOX_COORDS = ("XMin", "XMax", "YMin", "YMax")
# The box table every source produces: relative boxes as OpenImages/fiftyone store them.
TABLE_COLUMNS = ("ImageID", "DisplayName", "XMin", "YMin", "BoxWidth", "BoxHeight", *FLAGS)


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


def url_name(url: str) -> str:
    """The file name a URL (or path) ends with."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def fetch_csvs(
    urls: SourceUrls,
    boxes_dest: str | os.PathLike,
    class_map_dest: str | os.PathLike,
    *,
    download: DownloadSettings,
) -> tuple[Path, Path]:
    """Download (once) the box CSV and the class map to their destinations."""
    boxes = download_file(
        urls.boxes,
        boxes_dest,
        setting="urls.boxes",
        retries=download.retries,
        timeout=download.timeout,
        progress=True,
    )
    class_map = download_file(
        urls.class_map,
        class_map_dest,
        setting="urls.class_map",
        retries=download.retries,
        timeout=download.timeout,
    )
    return boxes, class_map


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
