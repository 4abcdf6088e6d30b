"""One small adapter per backend behind one interface: a runner takes an NCHW float32 batch in
[0,1] and returns the 10 head maps as numpy arrays, in the order of model.head.OUTPUT_NAMES."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class HeadRunner(Protocol):
    device: str  # the device that really runs (a runner refuses one that is not there)

    def __call__(self, images: np.ndarray) -> list[np.ndarray]: ...


def open_build(
    path, threads: int = 1, device: str = "cpu", batch_size: int | None = None
) -> HeadRunner:
    """A runner for a build file: .onnx through ONNX Runtime, .so (TVM) through its VM.

    `batch_size` is a TVM build's compiled batch: smaller batches are padded to it.
    """
    from pathlib import Path

    suffix = Path(path).suffix
    if suffix == ".onnx":
        from .onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, threads=threads, device=device)
    if suffix == ".so":
        from .tvm_runner import TvmRunner

        return TvmRunner(path, device=device, threads=threads, batch_size=batch_size)
    raise ValueError(f"build {path} is neither an .onnx model nor a TVM .so library")
