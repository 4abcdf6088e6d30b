"""Images -> detections, one way for every step: the `Detector` runs a batch through the
variant's runner (runtime.open_runner), converts the 10 head maps, makes the anchors once
and applies the host post-processing (postprocess.postprocess_detections), timing the two
stages ("inference", "postprocess") in its StageTimers.

Used by the infer rule's step (infer.infer_images: boxes in original pixels) and by LoadGen's
system under test (perf/: an original size of (1, 1) per image, so that the final scaling
divides by the input size and the boxes come out normalised to it, as MLPerf's accuracy log
wants them). `postprocess_maps` is the post-processing half alone (benchmarks/timing.py times
it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from .model.architectures import anchor_generator
from .model.head import NUM_LEVELS
from .postprocess import PostprocessSettings, level_anchors, postprocess_detections
from .runtime import HeadRunner
from .timers import StageTimers


class Detector:
    """images [N,3,S,S] + their original (height, width) -> per image a dict of numpy
    `boxes` (xyxy, scaled to the original size), `scores` and `labels`, best first."""

    def __init__(
        self,
        runner: HeadRunner | None,
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

    def __call__(
        self, images: np.ndarray, originals: Sequence[tuple[int, int]]
    ) -> list[dict[str, np.ndarray]]:
        start = time.perf_counter()
        maps = self.runner(images)
        inferred = time.perf_counter()
        detections = self.postprocess_maps(maps, originals)
        done = time.perf_counter()
        self.timers.add("inference", inferred - start, len(images))
        self.timers.add("postprocess", done - inferred, len(images))
        return detections

    def postprocess_maps(
        self, maps: Sequence[np.ndarray], originals: Sequence[tuple[int, int]]
    ) -> list[dict[str, np.ndarray]]:
        """The 10 head maps of a batch (OUTPUT_NAMES order) -> its detections (untimed)."""
        # [gpu-torch] a PyTorch runner on CUDA hands device tensors: to the host here until
        # post-processing runs on the device (the batched post-processing replaces this line)
        tensors = [m.cpu() if torch.is_tensor(m) else torch.from_numpy(np.asarray(m)) for m in maps]
        class_maps, box_maps = tensors[:NUM_LEVELS], tensors[NUM_LEVELS:]
        if self.anchors is None:
            sizes = [tuple(m.shape[2:]) for m in class_maps]
            self.anchors = level_anchors(self.generator, self.size, sizes)
        detections = postprocess_detections(
            class_maps, box_maps, self.anchors, self.size, list(originals), self.settings
        )
        return [{k: v.numpy() for k, v in d.items()} for d in detections]
