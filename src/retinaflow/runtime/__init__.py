"""One small adapter per backend behind one interface: a runner takes an NCHW float32 batch in
[0,1] and returns the 10 head maps as numpy arrays, in the order of model.head.OUTPUT_NAMES
(the PyTorch runner on CUDA: float32 torch tensors on the device, see torch_runner).

`open_runner` is the one factory: a variant names its backend (`backend`), and every step
that runs a head (infer, speed, fidelity, LoadGen) opens it here."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Protocol

import numpy as np


class HeadRunner(Protocol):
    device: str  # the device that really runs (a runner refuses one that is not there)

    def __call__(self, images: np.ndarray) -> list[np.ndarray]: ...


# the PyTorch variants: the checkpoint in PyTorch, in a dtype each; torch-int8 its int8 build
# (model/int8_head.py: the heads and the FPN's lower output convs in int8 Triton kernels, the
# trunk in fp16)
TORCH_VARIANTS = ("torch", "torch-fp16", "torch-bf16", "torch-int8")


def split_device(device: str) -> tuple[str, int]:
    """A device name -> (kind, GPU index): `cpu` -> (cpu, 0), `cuda` -> (cuda, 0), `cuda:1` ->
    (cuda, 1) (the index among the GPUs the process sees: a shard of inference picks one, see
    shards.shard_device). A name of another form comes back whole, for the runner to refuse."""
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit():
        return kind, int(index)
    return (kind, 0) if not index else (device, 0)


def is_cuda(device: str) -> bool:
    """`cuda` or `cuda:N` (a shard's GPU): every CUDA decision takes both."""
    return split_device(device)[0] == "cuda"


def backend(variant: str) -> str:
    """The backend that runs a variant: `torch`, `torch-fp16`, `torch-bf16`, `torch-int8`
    PyTorch, `onnx` and
    `onnx-int8` ONNX Runtime, every other variant (fp32, fp16, int8, int8-{method}) a TVM
    build."""
    if variant in TORCH_VARIANTS:
        return "pytorch"
    if variant.startswith("onnx"):
        return "onnxruntime"
    return "tvm"


def open_runner(
    variant: str,
    path: str | os.PathLike,
    model: dict | None = None,
    threads: int = 1,
    device: str = "cpu",
    batch_size: int | None = None,
    spinning: bool = True,
    torch_settings: dict | None = None,
) -> HeadRunner:
    """The runner of a variant's artifact: `torch*` the checkpoint (built as `model`: arch,
    num_classes, image_size; torch-int8 its int8 build), `onnx*` the ONNX model, the TVM
    variants the compiled .so.

    `batch_size` is a TVM build's compiled batch, and a compiled or CUDA-graphed PyTorch
    head's fixed one: smaller batches are padded to it.
    `torch_settings`: the PyTorch runner's settings (channels_last, compile, cuda_graphs,
    apply_on_cpu; torch_runner.torch_options), None for plain eager.
    `spinning=False`: idle threads of ONNX Runtime and TVM sleep (for timing beside another
    runtime in one process). A device that is not there is a DeviceError, before any image.
    """
    kind = backend(variant)
    if kind == "pytorch":
        from .torch_runner import TorchRunner, torch_device, torch_options, variant_dtype

        if variant == "torch-int8":  # (imports Triton: only for the variant that runs it)
            from ..model.int8_head import load_int8_head as load
        else:
            from ..model.loading import load_head as load

        if model is None:
            raise ValueError(f"variant {variant} needs the model settings to build its head")
        torch_device(device)  # a missing GPU is a DeviceError before the checkpoint loads
        options = torch_options(torch_settings, variant_dtype(variant), device)
        return TorchRunner(
            load(path, **model),
            threads=threads,
            device=device,
            options=options,
            batch_size=batch_size,
        )
    if kind == "onnxruntime":
        from .onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, threads=threads, device=device, spinning=spinning)
    from .tvm_runner import TvmRunner

    return TvmRunner(path, device=device, threads=threads, batch_size=batch_size, spinning=spinning)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def runner_settings(runner) -> dict:
    """What a record says about the runner that ran: the device and its name (the GPU's or
    the CPU's), a PyTorch runner's dtype, layout, compile mode and CUDA graphs, ONNX
    Runtime's execution provider."""
    if hasattr(runner, "settings"):
        return runner.settings()
    device = runner.device
    if is_cuda(device):
        import torch

        index = split_device(device)[1]
        name = torch.cuda.get_device_name(index) if torch.cuda.is_available() else device
    else:
        name = cpu_model()
    record = {"device": device, "device_name": name}
    if hasattr(runner, "provider"):
        record["provider"] = runner.provider
    return record
