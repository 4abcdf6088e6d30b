"""Images -> detections, one way for every step: the `Detector` runs a batch through the
variant's runner (runtime.open_runner), converts the 10 head maps, makes the anchors once
and post-processes them where they are, timing the two stages ("inference", "postprocess")
in its StageTimers: numpy maps (the CPU runners) on the host with
postprocess.postprocess_detections, torch tensors (a runner whose maps stay on a device) on
their device, so that only the final detections cross to the host, in one copy a batch
(BatchDetections.to_host, detections_to_host): `on_device` "fast" (device_postprocess: the
device's own kernels in fixed shapes, a few launches a level) or "exact" (batched_postprocess:
the CPU kernels' tie order reproduced, as the host path; slow on a GPU).

Used by the infer rule's step (infer.infer_images: boxes in original pixels) and by LoadGen's
system under test (perf/: an original size of (1, 1) per image, so that the final scaling
divides by the input size and the boxes come out normalised to it, as MLPerf's accuracy log
wants them). `postprocess_maps` is the post-processing half alone (benchmarks/timing.py times
it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch

from .batched_postprocess import batched_postprocess_detections
from .device_postprocess import (
    BatchDetections,
    device_postprocess_batch,
    numpy_dtypes,
    packed_rows,
    unpacked_rows,
)
from .model.architectures import anchor_generator
from .model.head import NUM_LEVELS
from .postprocess import PostprocessSettings, level_anchors, postprocess_detections
from .runtime import HeadRunner
from .timers import StageTimers

# CUDA stream priorities a stage (lower is served first; PyTorch maps any value into the
# device's range): the post-processing's kernels go ahead of the head's waiting blocks
STAGE_PRIORITIES = {"inference": 0, "postprocess": -1}


def stage_streams(device: torch.device) -> dict[str, torch.cuda.Stream]:
    """A new CUDA stream for each stage on `device`, at its STAGE_PRIORITIES priority."""
    return {
        stage: torch.cuda.Stream(device, priority=priority)
        for stage, priority in STAGE_PRIORITIES.items()
    }


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
        on_device: str = "fast",
    ):
        self.runner = runner
        self.size = (image_size, image_size)
        self.generator = anchor_generator(arch)
        self.settings = settings
        self.timers = timers or StageTimers()
        self.anchors = None
        self._device_anchors: dict[torch.device, list[torch.Tensor]] = {}  # copies, made once
        self._streams = threading.local()
        self.device_postprocess = {
            "fast": device_postprocess_batch,
            "exact": batched_postprocess_detections,
        }[on_device]

    def __call__(
        self, images: np.ndarray, originals: Sequence[tuple[int, int]]
    ) -> list[dict[str, np.ndarray]]:
        start = time.perf_counter()
        with self._stream("inference"):
            # maps this call is done with before the thread's next: a runner's own (lend)
            lend = getattr(self.runner, "lend", None)
            maps = lend(images) if lend else self.runner(images)
        inferred = time.perf_counter()
        with self._stream("postprocess"):
            detections = self.postprocess_maps(maps, originals)
        done = time.perf_counter()
        self.timers.add("inference", inferred - start, len(images))
        self.timers.add("postprocess", done - inferred, len(images))
        return detections

    def _stream(self, stage: str):
        """On CUDA, the calling thread's own stream for `stage` (STAGE_PRIORITIES): where
        several threads share one Detector (LoadGen's workers), one batch's post-processing
        runs beside the next one's head instead of behind it on the default stream. Its
        stream has the higher priority: its many short kernels, each followed by the host
        waiting on it, otherwise queue behind the head's long ones (on the H200 a batch's
        post-processing, 9.7 ms alone, took ~40 ms beside a head). The post-processing
        stream first waits for the head's (a no-op after a runner that synchronizes)."""
        device = str(getattr(self.runner, "device", "cpu"))
        if not device.startswith("cuda"):
            return nullcontext()
        streams = getattr(self._streams, "by_stage", None)
        if streams is None:
            streams = self._streams.by_stage = stage_streams(torch.device(device))
        stream = streams[stage]
        if stage == "postprocess":
            stream.wait_stream(streams["inference"])
        return torch.cuda.stream(stream)

    def postprocess_maps(
        self,
        maps: Sequence[np.ndarray] | Sequence[torch.Tensor],
        originals: Sequence[tuple[int, int]],
    ) -> list[dict[str, np.ndarray]]:
        """The 10 head maps of a batch (OUTPUT_NAMES order) -> its detections (untimed):
        torch tensors post-processed batched on their device, numpy arrays on the host."""
        on_device = all(isinstance(m, torch.Tensor) for m in maps)
        tensors = list(maps) if on_device else [torch.from_numpy(np.asarray(m)) for m in maps]
        class_maps, box_maps = tensors[:NUM_LEVELS], tensors[NUM_LEVELS:]
        if self.anchors is None:
            sizes = [tuple(m.shape[2:]) for m in class_maps]
            self.anchors = level_anchors(self.generator, self.size, sizes)
        if on_device:
            postprocess = self.device_postprocess
            device = class_maps[0].device
            if device not in self._device_anchors:
                self._device_anchors[device] = [a.to(device) for a in self.anchors]
            anchors = self._device_anchors[device]
        else:
            postprocess, anchors = postprocess_detections, self.anchors
        detections = postprocess(
            class_maps, box_maps, anchors, self.size, list(originals), self.settings
        )
        if isinstance(detections, BatchDetections):
            return detections.to_host()
        if on_device:
            return detections_to_host(detections)
        return [{k: v.numpy() for k, v in d.items()} for d in detections]


def detections_to_host(detections: list[dict[str, torch.Tensor]]) -> list[dict[str, np.ndarray]]:
    """A batch's detections from their device to numpy in one copy (one sync), not three an
    image: they travel as one [total, 6] tensor (device_postprocess.packed_rows) and are split
    back on the host, each field in its own dtype, contiguous."""
    if not detections:
        return []
    first = detections[0]
    dtypes = numpy_dtypes(first["boxes"], first["scores"], first["labels"])
    packed = torch.cat([packed_rows(d["boxes"], d["scores"], d["labels"]) for d in detections])
    ends = np.cumsum([len(d["scores"]) for d in detections])[:-1]
    return [unpacked_rows(part, dtypes) for part in np.split(packed.cpu().numpy(), ends)]
