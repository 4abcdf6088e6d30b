"""ONNX Runtime: the fp32 reference (variant `onnx`) and the peer for QDQ int8 models."""

from __future__ import annotations

import os

import numpy as np

from ..model.head import INPUT_NAME, OUTPUT_NAMES


class OnnxRuntimeRunner:
    def __init__(self, path: str | os.PathLike, threads: int = 1, device: str = "cpu"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
