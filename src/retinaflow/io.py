"""Atomic output: every artifact is written under a temporary name and renamed when complete,
so an interrupted run never leaves a half file that looks done."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path` (same suffix); rename it to `path` on success.

    Works for files and directories. On an exception the temporary is removed and `path`
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    _remove(tmp)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    """Write `obj` as JSON atomically (keys in insertion order, so output is deterministic).

    json.dumps, not json.dump: without an indent, dumps runs the C encoder in one shot, where
    dump streams through the pure-Python one (the same text, half the time: the detections
    json of the random 800x800 weights holds 100 entries an image)."""
    text = json.dumps(obj, indent=indent)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.write("\n")


def read_json(path: str | os.PathLike):
    with open(path) as f:
        return json.load(f)
