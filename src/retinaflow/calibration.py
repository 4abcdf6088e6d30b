"""The calibration subset: which images int8 calibration sees.

Either `count` images drawn without replacement from the evaluation split (the seed's
accelerator flow took 100 random validation images), or MLPerf's official list of 500 images.
A list file holds one file name a line, sorted, so the same config gives the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import numpy as np

from .data.annotations import load_annotations
from .errors import DatasetError, ImageError
from .io import atomic_path

# MLCommons calibration/openimages/openimages_cal_images_list.txt: 500 TRAIN-split images.
MLPERF_CALIBRATION_COUNT = 500
MLPERF_CALIBRATION_MD5 = "5c3196ddcec4605c6a9fcf004d9615e6"
MLPERF_CALIBRATION_LIST = Path(__file__).parent / "resources" / "openimages_cal_images_list.txt"


def sample_calibration_list(
    annotations_json: str | os.PathLike, count: int = 100, seed: int = 0
) -> list[str]:
    """`count` distinct file names of the split, drawn with a seeded numpy Generator, sorted."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"config key calibration.count must be a positive integer, got {count!r}")
    names = sorted({img["file_name"] for img in load_annotations(annotations_json)["images"]})
    if count > len(names):
        raise DatasetError(
            f"config key calibration.count is {count}, but {annotations_json} lists only "
            f"{len(names)} images: lower calibration.count to at most {len(names)}"
        )
    picked = np.random.default_rng(seed).choice(len(names), size=count, replace=False)
    return sorted(names[i] for i in picked)


def write_calibration_list(names: list[str], path: str | os.PathLike) -> None:
    """One file name a line, with a final newline; written atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text("".join(f"{name}\n" for name in names))


def _read_names(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"calibration list {path} does not exist: run the calibration rule")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"calibration list {path} is empty")
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        raise DatasetError(f"calibration list {path} repeats {duplicates[:3]}: delete it and rerun")
    return names


def read_calibration_list(path: str | os.PathLike, image_dir: str | os.PathLike) -> list[Path]:
    """The image paths of a list file, each checked to exist (a missing one is named)."""
    image_dir = Path(image_dir)
    paths = [image_dir / name for name in _read_names(path)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ImageError(
            f"calibration list {path} names {len(missing)} image(s) missing from {image_dir}, "
            f"first {missing[0]}: rerun the dataset rule, or for calibration.source: mlperf "
            "fetch these train-split images into that folder"
        )
    return paths


def read_mlperf_calibration_list(path: str | os.PathLike = MLPERF_CALIBRATION_LIST) -> list[str]:
    """MLPerf's 500-image list (no trailing newline in the original), checked by md5, sorted."""
    data = Path(path).read_bytes() if Path(path).is_file() else None
    if data is None:
        raise DatasetError(
            f"MLPerf calibration list {path} does not exist: copy openimages_cal_images_list.txt "
            "from mlcommons/inference calibration/openimages/ there"
        )
    digest = hashlib.md5(data).hexdigest()
    if digest != MLPERF_CALIBRATION_MD5:
        raise DatasetError(
            f"MLPerf calibration list {path} has md5 {digest}, expected {MLPERF_CALIBRATION_MD5}: "
            "it is not the official openimages_cal_images_list.txt"
        )
    names = _read_names(path)
    if len(names) != MLPERF_CALIBRATION_COUNT:
        raise DatasetError(f"MLPerf calibration list {path} holds {len(names)} names, not 500")
    return sorted(names)
