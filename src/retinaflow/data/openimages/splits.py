"""The two MLPerf splits of OpenImages and where each one's files live, so that every source
fetches either split through one code path instead of a copy per split."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Split:
    """One MLPerf split. name: its folder in the MLPerf layout, <root>/<name>/data.
    openimages_split: OpenImages' own split (the bucket folder, the zoo's split). listed: its
    images are a fixed list (MLPerf's calibration list), all fetched even those without a box
    of the classes; otherwise they are the images with such a box in the box CSV. Where its
    files are downloaded from is a setting (OpenImagesSettings.urls)."""

    name: str
    openimages_split: str
    annotations_json: str
    listed: bool

    def image_dir(self, root: str | os.PathLike) -> Path:
        return Path(root) / self.name / "data"

    def annotations_path(self, root: str | os.PathLike) -> Path:
        return Path(root) / "annotations" / self.annotations_json

    def image_url(self, images_url: str, image_id: str) -> str:
        """An image's URL in a bucket laid out as OpenImages' (<split>/<ImageID>.jpg)."""
        return f"{images_url.rstrip('/')}/{self.openimages_split}/{image_id}.jpg"


SPLITS = {
    "validation": Split(
        name="validation",
        openimages_split="validation",
        annotations_json="openimages-mlperf.json",
        listed=False,
    ),
    "calibration": Split(
        name="calibration",
        openimages_split="train",
        annotations_json="openimages-calibration-mlperf.json",
        listed=True,
    ),
}


def split_named(split: str | Split) -> Split:
    """The Split called `split` (a Split is returned as it is)."""
    if isinstance(split, Split):
        return split
    try:
        return SPLITS[split]
    except KeyError:
        raise ValueError(
            f"unknown OpenImages split {split!r}: one of {', '.join(SPLITS)}"
        ) from None
