"""The published MLPerf RetinaNet weights: fetched from zenodo once (resumed, md5-checked,
optionally kept in a cache folder shared by workflow runs) or copied from a local path."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from ..io import atomic_path
from .download import download_file, md5sum


@dataclass(frozen=True)
class PublishedWeights:
    """One weights file as MLCommons publishes it, with its md5 and reference mAP."""

    name: str
    url: str
    md5: str
    reference_map: float


PUBLISHED = {
    w.name: w
    for w in (
        PublishedWeights(
            "resnext50_32x4d_fpn.pth",
            "https://zenodo.org/record/6617981/files/resnext50_32x4d_fpn.pth",
            "a55f6bec3464f605ce8d686da8ac1533",
            0.3755,
        ),
        PublishedWeights(
            "resnext50_32x4d_fpn.onnx",
            "https://zenodo.org/record/6617879/files/resnext50_32x4d_fpn.onnx",
            "4544f4e56e0a4684215831cc937ea45c",
            0.3757,
        ),
        PublishedWeights(
            "retinanet_model_10.zip",
            "https://zenodo.org/record/6605272/files/retinanet_model_10.zip",
            "2037c152a6be18e371ebec654314f7e0",
            0.3755,
        ),
    )
}
DEFAULT_WEIGHTS = "resnext50_32x4d_fpn.pth"
# the checkpoint's download (no config setting: zenodo's one file, 150 MB)
RETRIES = 4
TIMEOUT_S = 120.0


def published_weights(name: str = DEFAULT_WEIGHTS) -> PublishedWeights:
    """The zenodo entry for a file name, or a CheckpointError listing the known names."""
    try:
        return PUBLISHED[name]
    except KeyError:
        raise CheckpointError(
            f"no published MLPerf weights named {name!r}: known are {sorted(PUBLISHED)}"
        ) from None


def fetch_weights(
    dest: str | os.PathLike,
    *,
    url: str | None = None,
    md5: str | None = None,
    path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Put the weights at `dest`: a copy of `path` when given, else a download of `url`
    (`published_weights()` names MLCommons' files and their md5s).

    With `cache_dir` the download is kept there under its own name and `dest` is a hard link
    (or copy) of it, so a cleaned workflow never downloads the 150 MB again. The md5, when
    known, is checked on every path: a wrong one moves the file to `<file>.bad-md5` and raises
    with both sums; the user's own file at `path` is never moved.
    """
    dest = Path(dest)
    if path is not None:
        return download_file(
            str(path), dest, setting="path", md5=md5, retries=RETRIES, timeout=TIMEOUT_S
        )
    if url is None:
        raise ValueError("fetch_weights needs a url or a path")
    if cache_dir is None:
        return download_file(
            url,
            dest,
            setting="url",
            md5=md5,
            retries=RETRIES,
            timeout=TIMEOUT_S,
            progress=True,
        )
    cached = download_file(
        url,
        Path(cache_dir) / url.rstrip("/").rsplit("/", 1)[-1],
        setting="url",
        md5=md5,
        retries=RETRIES,
        timeout=TIMEOUT_S,
        progress=True,
    )
    if dest.exists() and (os.path.samefile(dest, cached) or (md5 and md5sum(dest) == md5)):
        return dest
    with atomic_path(dest) as tmp:
        try:
            os.link(cached, tmp)
        except OSError:
            shutil.copyfile(cached, tmp)
    return dest
