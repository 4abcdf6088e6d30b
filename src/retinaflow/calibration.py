"""The calibration set: which images int8 calibration sees. Never an image that is scored.

MLPerf calibrates on its official list of 500 images of the OpenImages TRAIN split (source
mlperf); the offline demo on a split of its own, made by the demo generator with a seed of its
own (source demo). The seed's accelerator flow took 100 random validation images, i.e. images
it then scored: that leaks the evaluation set into the int8 model, and MLPerf forbids it, so
`check_disjoint` refuses any list that shares an image with the evaluation annotations.
A list file holds one file name a line, sorted, so the same config gives the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

from .data.annotations import load_annotations
from .errors import DatasetError, ImageError, ref
from .io import atomic_path

# MLCommons calibration/openimages/openimages_cal_images_list.txt: 500 TRAIN-split images.
MLPERF_CALIBRATION_COUNT = 500
MLPERF_CALIBRATION_MD5 = "5c3196ddcec4605c6a9fcf004d9615e6"
MLPERF_CALIBRATION_LIST = Path(__file__).parent / "resources" / "openimages_cal_images_list.txt"


CALIBRATION_SOURCES = ("mlperf", "demo")


def calibration_set(source: str, count: int, seed: int | None = None) -> dict:
    """What a calibration set is, for records and the summary: source, size, split, seed."""
    if source == "mlperf":
        return {"source": "mlperf", "images": count, "split": "train"}
    if source == "demo":
        return {"source": "demo", "images": count, "split": "calibration", "seed": seed}
    raise ValueError(f"calibration source must be one of {CALIBRATION_SOURCES}, got {source!r}")


def calibration_label(desc: dict | None) -> str:
    """E.g. `mlperf (500 images, train split)`, `demo (100 images, seed 3000)`; "" for none."""
    if not desc:
        return ""
    if desc.get("seed") is not None:
        return f"{desc['source']} ({desc['images']} images, seed {desc['seed']})"
    return f"{desc['source']} ({desc['images']} images, {desc.get('split', '?')} split)"


def check_disjoint(
    calibration_list: str | os.PathLike, evaluation_annotations: str | os.PathLike
) -> list[str]:
    """The list's names, after checking none of them is an image of the evaluation split.

    Raises DatasetError naming both files and the first shared image.
    """
    names = _read_names(calibration_list)
    scored = {img["file_name"] for img in load_annotations(evaluation_annotations)["images"]}
    shared = sorted(set(names) & scored)
    if shared:
        raise DatasetError(
            f"calibration list {calibration_list} shares {len(shared)} image(s) with the "
            f"evaluation annotations {evaluation_annotations}, first {shared[0]}: calibration "
            "must never see a scored image (MLPerf calibrates on its train-split list); set "
            f"{ref('calibration_source')} to mlperf, or for the demo {ref('calibration_seed')} "
            f"to another value than {ref('evaluation_seed')}"
        )
    return names


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
            f"first {missing[0]}: rerun the calibration rule (make_demo_calibration or "
            f"fetch_calibration), or for {ref('calibration_source')} mlperf fetch these "
            "train-split images into that folder"
        )
    return paths


def quantization_images(
    path: str | os.PathLike, image_dir: str | os.PathLike, evaluation_annotations
) -> list[Path]:
    """What an int8 calibration reads: the list's image paths (read_calibration_list), after
    check_disjoint refused any image of the scored split."""
    check_disjoint(path, evaluation_annotations)
    return read_calibration_list(path, image_dir)


def calibration_record(description: dict, images: int, path: str | os.PathLike) -> dict:
    """A quantize record's `calibration`: the set (calibration_set of the configured
    description, with the number of images really read) and its list file."""
    return {
        **calibration_set(description["source"], images, description.get("seed")),
        "list": str(path),
    }


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
