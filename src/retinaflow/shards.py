"""Splitting inference into shards (separate jobs a cluster can spread): which images a
shard runs, which GPU it takes, and how its detections travel to the gather step.

A shard is named as Snakemake's scatter/gather names it, `{i}-of-{n}` with i from 1 to n.
Shard i of n runs a contiguous range of the evaluation images in id order (the order of
`data.annotations.image_records` and of detections.json), made of whole batches of the
unsharded run: every image meets the runtime in the same batch as without shards (a GPU
kernel, or a thread split, may round differently for another batch), and the ranges are as
even as whole batches allow (they differ by at most one batch). Concatenated in shard order
they are the whole split, so the gather step writes the unsharded outputs with the unsharded
writers. More shards than batches leaves some shards empty: a valid shard of no images.

A shard's detections go to one `detections.npz` (the arrays as the detector returned them,
dtypes and all, so that the gathered files are byte-identical) and its timing to a
`stats.json`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import RetinaflowError
from .io import atomic_path

SHARD_NAME = re.compile(r"^(\d+)-of-(\d+)$")


class ShardError(RetinaflowError):
    """A shard name, a shard's file or the set of shards does not fit the evaluation split."""


def shard_name(index: int, count: int) -> str:
    """The name of the 0-based shard `index` of `count`: `1-of-2` for index 0 of 2."""
    if not 0 <= index < count:
        raise ShardError(f"shard index {index} is outside 0..{count - 1}")
    return f"{index + 1}-of-{count}"


def parse_shard(name: str) -> tuple[int, int]:
    """`i-of-n` (Snakemake's scatteritem, i from 1) -> (0-based index, count)."""
    match = SHARD_NAME.match(name)
    if not match:
        raise ShardError(f"shard name {name!r} is not of the form i-of-n (e.g. 1-of-2)")
    number, count = int(match[1]), int(match[2])
    if not 1 <= number <= count:
        raise ShardError(f"shard name {name!r}: i must be between 1 and n")
    return number - 1, count


def shard_bounds(total: int, count: int, batch: int = 1) -> list[tuple[int, int]]:
    """[start, stop) of each of `count` shards over `total` items taken `batch` at a time:
    contiguous, in order, covering 0..total, each starting on a batch boundary, their batch
    counts differing by at most one. With more shards than batches some shards are empty."""
    if count < 1:
        raise ShardError(f"the number of shards must be at least 1, not {count}")
    if batch < 1:
        raise ShardError(f"the batch size must be at least 1, not {batch}")
    if total < 0:
        raise ShardError(f"the number of images must not be negative, not {total}")
    batches = -(-total // batch)
    edges = [min(total, i * batches // count * batch) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def shard_items(items: Sequence, index: int, count: int, batch: int = 1) -> Sequence:
    """The slice of `items` (in the order given) that shard `index` of `count` runs."""
    start, stop = shard_bounds(len(items), count, batch)[index]
    return items[start:stop]


def shard_device(device: str, index: int, gpu_count: int) -> str:
    """The device shard `index` runs on: `cpu` stays `cpu`; `cuda` becomes
    `cuda:{index % gpu_count}` among the GPUs this process sees. Under SLURM a job asked for
    one GPU sees just its own (CUDA_VISIBLE_DEVICES), so every shard takes `cuda:0` there;
    locally, with `--resources gpu=2`, shards 1-of-2 and 2-of-2 run at once on GPUs 0 and 1.
    No GPU at all leaves `cuda`, which the runner refuses with its own message."""
    if device != "cuda" or gpu_count < 1:
        return device
    return f"cuda:{index % gpu_count}"


# One shard's detections, as arrays: the image ids in order, each image's detection count,
# then every image's boxes, scores and labels one after the other.
ARRAYS = ("image_ids", "counts", "boxes", "scores", "labels")


def write_shard_detections(path: str | os.PathLike, image_ids: Sequence[int], detections) -> None:
    """Write a shard's detections (per image: boxes [k, 4], scores [k], labels [k], as the
    Detector returns them) to one .npz, keeping their dtypes."""
    detections = list(detections)
    if len(detections) != len(image_ids):
        raise ValueError(f"{len(image_ids)} image ids for {len(detections)} detections")
    arrays = {
        "image_ids": np.asarray(image_ids, dtype=np.int64),
        "counts": np.asarray([len(d["scores"]) for d in detections], dtype=np.int64),
    }
    empty = {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32)}
    empty["labels"] = np.zeros(0, np.int64)
    for key in ("boxes", "scores", "labels"):
        parts = [np.asarray(d[key]) for d in detections]
        arrays[key] = np.concatenate(parts) if parts else empty[key]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def read_shard_detections(path: str | os.PathLike) -> list[tuple[int, dict[str, np.ndarray]]]:
    """A shard's (image id, detections) pairs in its order, with the dtypes it was written in."""
    path = Path(path)
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in ARRAYS}
    except (OSError, KeyError, ValueError) as err:
        raise ShardError(
            f"shard detections {path} cannot be read ({err}): rerun its shard"
        ) from err
    counts = arrays["counts"]
    if len(counts) != len(arrays["image_ids"]) or counts.sum() != len(arrays["scores"]):
        raise ShardError(f"shard detections {path} are inconsistent: rerun its shard")
    cuts = np.cumsum(counts)[:-1]
    split = {key: np.split(arrays[key], cuts) for key in ("boxes", "scores", "labels")}
    return [
        (int(image_id), {key: split[key][i] for key in ("boxes", "scores", "labels")})
        for i, image_id in enumerate(arrays["image_ids"].tolist())
    ]


def gather_detections(
    paths: Sequence[str | os.PathLike], records: Sequence, batch: int
) -> list[tuple]:
    """The shards' detections (in shard order) as (record, detections) for every record, in
    the records' order: exactly what an unsharded run has in hand before it writes. A shard
    that holds other images than its range (a shard of an older split, a changed dataset) is
    an error naming it."""
    count = len(paths)
    results = []
    for index, path in enumerate(paths):
        expected = shard_items(records, index, count, batch)
        pairs = read_shard_detections(path)
        ids = [image_id for image_id, _ in pairs]
        if ids != [r.id for r in expected]:
            raise ShardError(
                f"shard {shard_name(index, count)} ({path}) holds {len(ids)} images that are not "
                f"its {len(expected)} images of the evaluation split: rerun its shard"
            )
        results.extend(zip(expected, (det for _, det in pairs), strict=True))
    return results


def gather_stats(shard_stats: Sequence[dict]) -> dict:
    """One stats record for a sharded run: the unsharded keys, with `images` and `seconds`
    summed over the shards (seconds of inference work, not the wall time: shards may run at
    once) and `images_per_second` their ratio (one job's rate, comparable with an unsharded
    run's); `device` the shards' one device, or a list of theirs when they differ; `shards`
    each shard's own record."""
    if not shard_stats:
        raise ShardError("no shard stats to gather")
    images = sum(s["images"] for s in shard_stats)
    seconds = round(sum(s["seconds"] for s in shard_stats), 3)
    devices = [s["device"] for s in shard_stats]
    names = [s.get("device_name") for s in shard_stats]
    first = shard_stats[0]
    return {
        "images": images,
        "seconds": seconds,
        "images_per_second": round(images / seconds, 3) if seconds else None,
        "variant": first["variant"],
        "threads": first["threads"],
        "batch_size": first["batch_size"],
        "device": devices[0] if len(set(devices)) == 1 else devices,
        "device_name": names[0] if len(set(names)) == 1 else names,
        "decode": first.get("decode"),
        "runner": first.get("runner"),
        "shards": list(shard_stats),
    }
