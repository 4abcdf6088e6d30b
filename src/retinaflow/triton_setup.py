"""Triton for this project's kernels (triton_conv, triton_nms, radix_topk), imported before
triton itself: where PyTorch sees no CUDA GPU the kernels run in Triton's interpreter
(TRITON_INTERPRET=1, which the tests use on the CPU).

The interpreter runs a kernel's Python, but triton.language's own jit helpers (tl.sum,
tl.cumsum, tl.cdiv, tl.zeros) were decorated when triton was first imported, and torchvision
imports it before this module can set the variable: those helpers are then compiled
functions, which an interpreted kernel cannot call. The kernels therefore use builtins only,
with `sum_combine` and `max_combine` as the combine functions of tl.reduce and
tl.associative_scan for a sum, a running sum and a maximum: they are the functions tl.sum,
tl.cumsum and tl.max pass themselves (private names of triton.language.standard, in Triton
3.6 and 3.8 alike), which the interpreter recognises and runs as numpy's (runtime/
interpreter.py: ReduceOps, ScanOps); a function of our own would be combined element by
element in Python, 100 times slower.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():  # before triton.jit: the kernels run in the interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton.language as tl  # noqa: E402

sum_combine = tl.standard._sum_combine  # tl.reduce(x, 0, sum_combine) is tl.sum(x, 0)
max_combine = tl.standard._elementwise_max  # tl.reduce(x, 0, max_combine) is tl.max(x, 0)
