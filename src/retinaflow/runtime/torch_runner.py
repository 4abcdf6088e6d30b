"""PyTorch eager (variant `torch`): the checkpoint run directly, no export in between."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DeviceError
from ..model.head import HeadMaps
from . import split_device


def torch_device(device: str) -> torch.device:
    """The torch device for a name (`cpu`, `cuda`, `cuda:N`), or a DeviceError when it is not
    on this machine."""
    kind, index = split_device(device)
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' asked for, but PyTorch finds no CUDA GPU on this machine "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False): run on a GPU "
            "node, or set the device to cpu"
        )
    if kind not in ("cpu", "cuda"):
        raise DeviceError(f"PyTorch runs on 'cpu' or 'cuda' here, not {device!r}")
    if kind == "cuda" and index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {device!r} asked for, but PyTorch sees {torch.cuda.device_count()} GPU(s) "
            "(CUDA_VISIBLE_DEVICES): use one of those"
        )
    return torch.device(device)


class TorchRunner:
    def __init__(self, head: HeadMaps, threads: int = 1, device: str = "cpu"):
        torch.set_num_threads(threads)
        self.torch_device = torch_device(device)
        self.device = device
        self.head = head.eval().to(self.torch_device)

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            maps = self.head(torch.from_numpy(images).to(self.torch_device))
        return [m.cpu().numpy() for m in maps]
