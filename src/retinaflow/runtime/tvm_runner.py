"""TVM (variants `fp32`, `fp16`, `int8`): a compiled build run by TVM's virtual machine.

It needs only TVM's runtime (`tvm.runtime`, not `tvm.relax`), so that a GPU machine may hold
the runtime alone (TVM_USE_RUNTIME_LIB=1, without the 259 MB compiler library). There, TVM
loads neither its CUDA runtime library nor a working compiler for a CUDA build's kernels,
which a build made without a CUDA driver keeps as CUDA C source (compile.gpu_device_code) to
be compiled when the module loads: `cuda_runtime_ready` supplies both.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import DeviceError, ref
from ..model.head import OUTPUT_NAMES
from . import split_device

log = logging.getLogger("retinaflow")


def build_target(so_path: Path) -> dict | None:
    """The target a build's meta.json (beside its module.so) records; None without one."""
    meta = so_path.with_name("meta.json")
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("target") or {}


def build_device_kind(so_path: Path) -> str | None:
    """The device kind, cuda or cpu, that a build's meta.json says its target runs on; None
    where there is no meta to read."""
    return target_device_kind(build_target(so_path))


def target_device_kind(target: dict | None) -> str | None:
    """cuda or cpu for a recorded target (build_target); None for none."""
    if target is None:
        return None
    return "cuda" if target.get("kind") == "cuda" else "cpu"


def build_device(variant_backend: str, path) -> str:
    """Where the speed and fidelity steps open an artifact: a TVM build on the device its
    target names (a CUDA build on `cuda`: a clear DeviceError on a machine without a GPU),
    anything else on the CPU."""
    if variant_backend != "tvm":
        return "cpu"
    return build_device_kind(Path(path)) or "cpu"


def cuda_runtime_ready(tvm, arch: str | None) -> None:
    """Make a runtime-only TVM able to run a CUDA build: load libtvm_runtime_cuda.so (the CUDA
    device API and module loader, which a full TVM loads on import) and, where the
    compile callback TVM registers needs the compiler library (it asks
    tvm.target.Target.current()), register one that compiles the build's kernels with NVRTC
    (cuda-bindings) for the build's own `arch`. A full TVM is left as it is."""
    if tvm.get_global_func("device_api.cuda", allow_missing=True) is None:
        from tvm.base import _LOADED_LIBS
        from tvm_ffi.libinfo import load_lib_ctypes

        lib_dir = Path(_LOADED_LIBS["tvm_runtime"]._name).resolve().parent
        try:
            _LOADED_LIBS["tvm_runtime_cuda"] = load_lib_ctypes(
                package="tvm", target_name="tvm_runtime_cuda", extra_lib_paths=[lib_dir],
                mode="RTLD_LOCAL",
            )  # fmt: skip
        except (OSError, RuntimeError) as err:
            raise DeviceError(
                f"TVM cannot load its CUDA runtime library from {lib_dir} ({err}): a CUDA build "
                "runs on a machine with a CUDA GPU and its driver (libcuda.so.1), under a TVM "
                "built with CUDA"
            ) from err
    if not getattr(tvm.base, "_RUNTIME_ONLY", False) or not arch:
        return
    import tvm_ffi
    from tvm.support import nvcc  # (registers TVM's own callback first)

    def compile_kernels(code: str) -> bytearray:
        log.info("TVM: compiling a CUDA build's kernels for %s with NVRTC", arch)
        return nvcc.compile_cuda(code, target_format="cubin", arch=arch, compiler="nvrtc")

    tvm_ffi.register_global_func("tvm_callback_cuda_compile", compile_kernels, override=True)


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
        from tvm.runtime.vm import VirtualMachine

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
        target = build_target(so_path)  # the meta.json beside it, read once
        built_for = target_device_kind(target)
        if built_for is not None and built_for != kind:
            raise DeviceError(
                f"TVM build {so_path} was compiled for {built_for} ({ref('target')}, in its "
                f"meta.json) but is asked to run on {device!r}: set the device to {built_for}, "
                "or build for this device"
            )
        if kind == "cuda":
            cuda_runtime_ready(tvm, (target or {}).get("arch"))
        self.tvm_device = tvm.cpu() if kind == "cpu" else tvm.cuda(index)
        if not self.tvm_device.exist:
            raise DeviceError(
                f"device {device!r} asked for, but TVM finds no CUDA GPU on this machine: run "
                "on a GPU node, or set the device to cpu"
            )
        self.device = device
        self.vm = VirtualMachine(tvm.runtime.load_module(str(so_path)), self.tvm_device)
        self.main = self.vm["main"]
        self._tensor = tvm.runtime.tensor
        self.so_path = so_path
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        count = len(images)
        if self.batch_size and count < self.batch_size:
            # a build takes exactly its compiled batch: repeat the last image to fill it
            fill = np.repeat(images[-1:], self.batch_size - count, axis=0)
            return [m[:count] for m in self(np.concatenate([images, fill]))]
        images = np.ascontiguousarray(images, dtype=np.float32)
        with self._lock:  # one VM: threads (batches in flight) take turns
            try:
                outputs = self.main(self._tensor(images, self.tvm_device))
            except Exception as err:  # the VM's shape check names no file
                raise ValueError(
                    f"TVM build {self.so_path} rejected input of shape {list(images.shape)}: "
                    "a build runs only the input shape it was compiled for (see its meta json) "
                    f"({err})"
                ) from err
            maps = [o.numpy() for o in outputs]
        if len(maps) != len(OUTPUT_NAMES):
            raise ValueError(f"TVM build {self.so_path} returned {len(maps)} maps, expected 10")
        return [m.astype(np.float32, copy=False) for m in maps]
