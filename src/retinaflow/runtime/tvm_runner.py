"""TVM (variants `fp32`, `fp16`, `int8`): a compiled build run by relax.VirtualMachine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import DeviceError, ref
from ..model.head import OUTPUT_NAMES
from . import split_device


def build_device_kind(so_path: Path) -> str | None:
    """The device kind, cuda or cpu, that a build's meta.json (beside its module.so) says its
    target runs on; None where there is no meta to read."""
    meta = so_path.with_name("meta.json")
    if not meta.is_file():
        return None
    target = json.loads(meta.read_text()).get("target") or {}
    return "cuda" if target.get("kind") == "cuda" else "cpu"


class TvmRunner:
    """Loads a self-contained build (.so from compile.compile_head) and runs its `main`.

    The Relax function returns the maps in the ONNX graph's output order, which export fixes
    to OUTPUT_NAMES; the count and the input shape are checked on every call.
    `spinning=False` makes the idle threads of TVM's pool sleep (read once, when the pool
    starts: before the first TVM call of the process).
    """

    def __init__(
        self,
        so_path: str | os.PathLike,
        device: str = "cpu",
        threads: int = 1,
        batch_size: int | None = None,
        spinning: bool = True,
    ):
        import tvm
        from tvm import relax

        so_path = Path(so_path)
        if not so_path.is_file():
            raise FileNotFoundError(f"TVM build {so_path} does not exist: run the compile rule")
        # TVM's CPU pool reads this once, when it starts: the first runner of a process sets
        # the thread count for all. Unset, TVM takes half the logical CPUs (1 on 2 cores).
        os.environ["TVM_NUM_THREADS"] = str(threads)
        if not spinning:  # idle threads sleep: another runtime timed in the process keeps its cores
            os.environ["TVM_THREAD_POOL_SPIN_COUNT"] = "0"
        kind, index = split_device(device)
        if kind not in ("cpu", "cuda"):
            raise DeviceError(f"a TVM build runs on 'cpu' or 'cuda' here, not {device!r}")
        built_for = build_device_kind(so_path)
        if built_for is not None and built_for != kind:
            raise DeviceError(
                f"TVM build {so_path} was compiled for {built_for} ({ref('target')}, in its "
                f"meta.json) but is asked to run on {device!r}: set the device to {built_for}, "
                "or build for this device"
            )
        self.tvm_device = tvm.cpu() if kind == "cpu" else tvm.cuda(index)
        if not self.tvm_device.exist:
            raise DeviceError(
                f"device {device!r} asked for, but TVM finds no CUDA GPU on this machine: run "
                "on a GPU node, or set the device to cpu"
            )
        self.device = device
        self.vm = relax.VirtualMachine(tvm.runtime.load_module(str(so_path)), self.tvm_device)
        self.main = self.vm["main"]
        self._tensor = tvm.runtime.tensor
        self.so_path = so_path
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        count = len(images)
        if self.batch_size and count < self.batch_size:
            # a build takes exactly its compiled batch: repeat the last image to fill it
            fill = np.repeat(images[-1:], self.batch_size - count, axis=0)
            return [m[:count] for m in self(np.concatenate([images, fill]))]
        images = np.ascontiguousarray(images, dtype=np.float32)
        try:
            outputs = self.main(self._tensor(images, self.tvm_device))
        except Exception as err:  # the VM's shape check names no file
            raise ValueError(
                f"TVM build {self.so_path} rejected input of shape {list(images.shape)}: a "
                f"build runs only the input shape it was compiled for (see its meta json) ({err})"
            ) from err
        maps = [o.numpy() for o in outputs]
        if len(maps) != len(OUTPUT_NAMES):
            raise ValueError(f"TVM build {self.so_path} returned {len(maps)} maps, expected 10")
        return [m.astype(np.float32, copy=False) for m in maps]
