"""Loading weights into an architecture, whatever form the checkpoint takes.

MLPerf publishes a TorchScript archive (resnext50_32x4d_fpn.pth) and a training checkpoint (a
dict whose "model" key holds the state dict); the demo ships a plain state dict. Old torchvision
key names (FPN blocks, head convs) are upgraded by torchvision's own load hooks.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ref


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a TorchScript archive, a {"model": ...} checkpoint or a state dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"weights file {path} does not exist: run the weights rule, or set "
            f"{ref('source')} to local and {ref('path')} to a local copy"
        )
    try:
        if _is_torchscript(path):
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # training checkpoints pickle their argparse args too
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise CheckpointError(
            f"weights file {path} is not a PyTorch checkpoint ({err}): delete it and rerun "
            "the weights rule"
        ) from err
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    elif isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"weights file {path} holds no state dict (expected a TorchScript archive, a dict "
            'with key "model", or a state dict)'
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_weights(model: nn.Module, path: str | os.PathLike, arch: str = "") -> nn.Module:
    """Load a checkpoint into `model` strictly, or explain which architecture it does not fit."""
    state = read_state_dict(path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        first = str(err).split("\n\t")[1:3]
        raise CheckpointError(
            f"weights file {path} does not fit the architecture {arch!r}: "
            f"{'; '.join(first)}. Check {ref('arch')} and {ref('num_classes')}"
        ) from err
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"weights file {path} does not fit the architecture {arch!r}: "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:3]}), "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[:3]}). "
            f"Check {ref('arch')} and {ref('num_classes')}"
        )
    return model.eval()
