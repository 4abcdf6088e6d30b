"""One batch through the build and the host post-processing, to LoadGen payloads.

The same post-processing as infer.infer_images (postprocess.postprocess_detections), with
boxes normalised to the model input as MLPerf's accuracy log wants them: passing an original
size of (1, 1) makes its final scaling divide by the input size.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..model.architectures import anchor_generator
from ..model.head import NUM_LEVELS
from ..postprocess import PostprocessSettings, level_anchors, postprocess_detections
from ..runtime import HeadRunner
from .accuracy import encode_detections
from .timers import StageTimers


class BatchDetector:
    """images [N,3,S,S] + their sample indices -> one float32 payload per sample."""

    def __init__(
        self,
        runner: HeadRunner,
        arch: str,
        image_size: int,
        settings: PostprocessSettings,
        timers: StageTimers | None = None,
    ):
        self.runner = runner
        self.size = (image_size, image_size)
        self.generator = anchor_generator(arch)
        self.settings = settings
        self.timers = timers or StageTimers()
        self.anchors = None

    def __call__(self, images: np.ndarray, indices: list[int]) -> list[np.ndarray]:
        n = len(indices)
        start = time.perf_counter()
        maps = self.runner(images)
        inferred = time.perf_counter()
        maps = [torch.from_numpy(np.asarray(m)) for m in maps]
        class_maps, box_maps = maps[:NUM_LEVELS], maps[NUM_LEVELS:]
        if self.anchors is None:
            sizes = [tuple(m.shape[2:]) for m in class_maps]
            self.anchors = level_anchors(self.generator, self.size, sizes)
        detections = postprocess_detections(
            class_maps, box_maps, self.anchors, self.size, [(1, 1)] * n, self.settings
        )
        payloads = [
            encode_detections(index, d["boxes"].numpy(), d["scores"].numpy(), d["labels"].numpy())
            for index, d in zip(indices, detections, strict=True)
        ]
        done = time.perf_counter()
        self.timers.add("inference", inferred - start, n)
        self.timers.add("postprocess", done - inferred, n)
        return payloads
