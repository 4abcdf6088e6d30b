"""ONNX Runtime: the fp32 reference (variant `onnx`) and the peer for QDQ int8 models."""

from __future__ import annotations

import os

import numpy as np

from ..errors import DeviceError
from ..model.head import INPUT_NAME, OUTPUT_NAMES
from . import split_device

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRuntimeRunner:
    """`device` is where it must run: ONNX Runtime falls back to the CPU without a word when a
    provider cannot start, so the session's first provider is checked, and `self.device` is
    the device that really runs. `spinning=False` turns off the busy-waiting of idle threads
    (for timing beside another runtime in one process)."""

    def __init__(
        self, path: str | os.PathLike, threads: int = 1, device: str = "cpu", spinning: bool = True
    ):
        import onnxruntime as ort

        kind, index = split_device(device)
        if kind not in PROVIDERS:
            raise DeviceError(f"ONNX Runtime runs on {sorted(PROVIDERS)}, not {device!r}")
        if PROVIDERS[kind] not in ort.get_available_providers():
            raise DeviceError(
                f"device {device!r} asked for, but this onnxruntime ({ort.__version__}) has only "
                f"{ort.get_available_providers()}: install onnxruntime-gpu on a machine with a "
                "CUDA GPU, or set the device to cpu"
            )

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spinning:  # idle threads sleep: another runtime timed in the process keeps its cores
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list = [PROVIDERS["cpu"]]
        if kind == "cuda":  # cuda:N: the N-th GPU this process sees
            providers.insert(0, (PROVIDERS["cuda"], {"device_id": index}))
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        running = self.session.get_providers()[0]
        if running != PROVIDERS[kind]:
            raise DeviceError(
                f"device {device!r} asked for, but ONNX Runtime could not start "
                f"{PROVIDERS[kind]} for {path} and would run on {running}: check the CUDA "
                "driver and libraries, or set the device to cpu"
            )
        self.device = device
        self.provider = running  # for the records (runner_settings)

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
