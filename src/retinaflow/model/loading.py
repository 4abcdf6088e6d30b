"""From a weights file to a ready network: the architecture named in config, loaded strictly."""

from __future__ import annotations

import os

import torch
from torchvision.models.detection.retinanet import RetinaNet

from ..io import atomic_path
from .architectures import build_retinanet
from .checkpoint import load_weights
from .head import HeadMaps


def load_model(
    weights: str | os.PathLike, arch: str, num_classes: int, image_size: int
) -> RetinaNet:
    model = build_retinanet(arch, num_classes, image_size)
    return load_weights(model, weights, arch=f"{arch}, {num_classes} classes")


def load_head(weights: str | os.PathLike, arch: str, num_classes: int, image_size: int) -> HeadMaps:
    """The truncated forward of the loaded network, in eval mode."""
    return HeadMaps(load_model(weights, arch, num_classes, image_size)).eval()


def store_weights(
    src: str | os.PathLike, dst: str | os.PathLike, arch: str, num_classes: int, image_size: int
) -> None:
    """Store a checkpoint in the DAG after checking that it fits the configured architecture.

    Any published form (TorchScript, training dict, state dict) is stored as the plain state
    dict of the loaded network (current key names), so later steps load one format.
    """
    model = load_model(src, arch, num_classes, image_size)
    with atomic_path(dst) as tmp, open(tmp, "wb") as f:
        torch.save(model.state_dict(), f)  # a file object: the archive is not named after tmp
