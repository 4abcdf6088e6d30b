"""Smoke test on the GPU machine: each CUDA build opened by retinaflow's TvmRunner under
runtime-only TVM (its kernels compiled by NVRTC on load), run once on zeros."""
import sys
import time

import numpy as np
import tvm

from retinaflow.runtime.tvm_runner import TvmRunner, build_target

print("tvm", tvm.__version__, "runtime only:", tvm.base._RUNTIME_ONLY, flush=True)
for path in sys.argv[1:]:
    started = time.perf_counter()
    runner = TvmRunner(path, device="cuda", threads=4)
    opened = time.perf_counter() - started
    shape = [int(v) for v in __import__("json").load(open(path.replace("module.so", "meta.json")))["input_shape"]]
    maps = runner(np.zeros(shape, np.float32))
    print(f"{path}: target {build_target(__import__('pathlib').Path(path))}, opened in {opened:.1f} s, "
          f"{len(maps)} maps, first {maps[0].shape}, finite {all(np.isfinite(m).all() for m in maps)}", flush=True)
