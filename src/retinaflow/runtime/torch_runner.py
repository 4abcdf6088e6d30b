"""PyTorch eager (variant `torch`): the checkpoint run directly, no export in between."""

from __future__ import annotations

import numpy as np
import torch

from ..model.head import HeadMaps


class TorchRunner:
    def __init__(self, head: HeadMaps, threads: int = 1, device: str = "cpu"):
        torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.head = head.eval().to(self.device)

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            maps = self.head(torch.from_numpy(images).to(self.device))
        return [m.cpu().numpy() for m in maps]
