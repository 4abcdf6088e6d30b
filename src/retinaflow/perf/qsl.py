"""The query sample library: MLPerf's sample index is the position in the annotations json's
`images` array. LoadGen's load hook preprocesses the samples it asks for, in parallel, into
memory, so that decoding and resizing stay out of the timed queries (as in MLPerf's
reference, which reads preprocessed arrays)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..data.annotations import ImageRecord
from ..data.images import preprocess_image
from ..errors import DatasetError
from ..timers import StageTimers


def sample_records(annotations: dict, image_dir: str | os.PathLike) -> list[ImageRecord]:
    """The images in the json's array order (MLPerf's sample indices), every file checked.

    A missing file would shift every later sample index against the json (MLPerf's reference
    silently drops it), so it fails here, before LoadGen starts.
    """
    image_dir = Path(image_dir)
    records = [
        ImageRecord(img["id"], image_dir / img["file_name"], img["width"], img["height"])
        for img in annotations["images"]
    ]
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(records)} images of the annotations are missing from "
            f"{image_dir} (first: {missing[0].name}): MLPerf's sample index is the position in "
            "the json's images array, so rerun the dataset rule to fetch them"
        )
    return records


class SampleLibrary:
    """Preprocessed samples in memory, loaded and unloaded by LoadGen's hooks.

    The cache holds float32 CHW arrays (the model input), so a query only stacks them: no
    conversion in the timed path. Per-image preprocessing time goes to `timers` under
    "preprocess" (one thread's time per image) and "preprocess_wall" (the parallel load's
    wall time spread over its images).

    `pinned=True` (a PyTorch runner on CUDA): each sample is kept in page-locked host memory
    and a batch is the list of them, unstacked: the runner copies each one straight into its
    slot of the device batch (no host copy in the timed path). `dtype` (a torch dtype): the
    samples are kept as torch tensors cast to it, the head's input dtype, so that the timed copy
    to the GPU moves half the bytes in float16 or bfloat16 (3.8 instead of 7.7 MB an image at
    800x800). The cast is the one the runner would make on the device (IEEE round to nearest
    even on both), so the head sees the same input; it happens in the untimed load, as MLPerf
    lets a submitter store its preprocessed samples in the format its system reads.
    """

    def __init__(
        self,
        records: list[ImageRecord],
        image_size: int,
        resize_kernel: str,
        workers: int = 1,
        timers: StageTimers | None = None,
        pinned: bool = False,
        dtype=None,
    ):
        self.records = records
        self.size = (image_size, image_size)
        self.resize_kernel = resize_kernel
        self.workers = max(1, workers)
        self.timers = timers or StageTimers()
        self.pinned = pinned
        self.dtype = dtype
        self.cache: dict = {}
        self.error: Exception | None = None

    def describe(self) -> str:
        """How the samples are kept, for the records: e.g. `float16 CHW, pinned`."""
        dtype = str(self.dtype).removeprefix("torch.") if self.dtype is not None else "float32"
        return f"{dtype} CHW" + (", pinned" if self.pinned else "")

    def __len__(self) -> int:
        return len(self.records)

    def _preprocess(self, index: int) -> np.ndarray:
        start = time.perf_counter()
        image = preprocess_image(self.records[index].path, self.size, self.resize_kernel)
        if self.pinned or self.dtype is not None:
            import torch

            image = torch.from_numpy(image)
            if self.dtype is not None:
                image = image.to(self.dtype)
            if self.pinned:
                image = image.pin_memory()
        self.timers.add("preprocess", time.perf_counter() - start, 1)
        return image

    def load(self, indices) -> None:
        """LoadGen's load hook. An exception must not reach LoadGen (it would abort the
        process without a message): the first one is kept in `error` for the caller."""
        todo = [i for i in dict.fromkeys(indices) if i not in self.cache]
        if not todo or self.error is not None:
            return
        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
                for index, image in zip(todo, pool.map(self._preprocess, todo)):
                    self.cache[index] = image
        except Exception as err:  # the queries of unloaded samples then fail in the SUT
            self.error = err
            return
        self.timers.add("preprocess_wall", time.perf_counter() - start, len(todo))

    def unload(self, indices) -> None:
        for index in indices:
            self.cache.pop(index, None)

    def batch(self, indices: list[int]):
        """NCHW float32 of the samples (a view, without a copy, for a single sample); pinned
        or cast to `dtype`: the list of the samples' CHW tensors."""
        if self.pinned or self.dtype is not None:
            return [self.cache[i] for i in indices]
        if len(indices) == 1:
            return self.cache[indices[0]][None]
        return np.stack([self.cache[i] for i in indices])
