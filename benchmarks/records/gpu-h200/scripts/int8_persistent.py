"""Eleventh lease: the int8 head kernel (triton_conv._conv3x3_kernel) as a persistent kernel,
against the library's one-tile-a-program launch, on the H200 at batch 32.

The library's kernel runs 128x128 tiles with a 128-channel step and three stages (96 KB of
shared memory: two blocks a multiprocessor, sixth lease), one program a tile: each tile's
pipeline fills and drains, and its epilogue (the float16 class map: 32 KB a tile through
masked pointer stores) waits on nothing but holds its registers. Here:
- PROGRAMS a multiprocessor (1 or 2) loop over the tiles (`tl.range(..., flatten=FLAT)`:
  flattened, Triton software-pipelines across the tile loop, the next tile's loads issued
  during this tile's last steps and epilogue);
- TMA: the epilogue stores through a tensor descriptor (the frame and the rows past the
  pixels written as zeros for int8 output), else the library's masked stores.
Every variant's output is compared byte for byte with the library kernel's (int32 sums are
exact). Usage: python int8_persistent.py [budget_s]; --check: small shapes in Triton's
interpreter on the CPU (the variants' bytes against the library's)."""
import sys
import time

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from retinaflow import triton_conv as tc  # noqa: I001  first: the interpreter without CUDA

CUDA = torch.cuda.is_available()
SMS = torch.cuda.get_device_properties(0).multi_processor_count if CUDA else 1  # the check: tiles > programs


@triton.jit
def _tile(tile, grid_m, grid_n, GROUP_M: tl.constexpr):
    in_group = GROUP_M * grid_n
    first_m = (tile // in_group) * GROUP_M
    group_size = tl.minimum(grid_m - first_m, GROUP_M)
    return first_m + (tile % in_group) % group_size, (tile % in_group) // group_size


@triton.jit
def kernel(x_desc, w_desc, y_desc, scale_ptr, bias_ptr, y_ptr, out_inv_scale, P, HP, WP, C, OC, MARGIN,
           RELU: tl.constexpr, INT8_OUT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
           BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, PROGRAMS: tl.constexpr, FLAT: tl.constexpr,
           TMA: tl.constexpr):
    start = tl.program_id(0)
    grid_m = (P + BLOCK_M - 1) // BLOCK_M
    grid_n = (OC + BLOCK_N - 1) // BLOCK_N
    tiles = grid_m * grid_n
    tile_c = start - PROGRAMS  # the epilogue's own counter (the tutorial's work-around)
    for tile in tl.range(start, tiles, PROGRAMS, flatten=FLAT):
        pid_m, pid_n = _tile(tile, grid_m, grid_n, GROUP_M)
        row0 = pid_m * BLOCK_M
        acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.int32)
        for k in range(0, 9 * C, BLOCK_K):
            tap = k // C
            shift = (tap // 3 - 1) * WP + tap % 3 - 1
            a = x_desc.load([MARGIN + row0 + shift, k % C])
            b = w_desc.load([pid_n * BLOCK_N, k])
            acc = tl.dot(a, b.T, acc, out_dtype=tl.int32)
        tile_c += PROGRAMS
        pid_m, pid_n = _tile(tile_c, grid_m, grid_n, GROUP_M)
        row0 = pid_m * BLOCK_M
        offs_m = row0 + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        col_ok = offs_n < OC
        scale = tl.load(scale_ptr + offs_n, mask=col_ok, other=0.0)
        bias = tl.load(bias_ptr + offs_n, mask=col_ok, other=0.0)
        y = acc.to(tl.float32) * scale[None, :] + bias[None, :]
        if RELU:
            y = tl.maximum(y, 0.0)
        row = (offs_m // WP) % HP
        col = offs_m % WP
        interior = (row > 0) & (row < HP - 1) & (col > 0) & (col < WP - 1) & (offs_m < P)
        if TMA:
            if INT8_OUT:
                q = tl.floor(y * out_inv_scale + 0.5)
                q = tl.minimum(tl.maximum(q, -127.0), 127.0)
                q = tl.where(interior[:, None], q, 0.0)
                y_desc.store([MARGIN + row0, pid_n * BLOCK_N], q.to(tl.int8))
            else:
                y_desc.store([MARGIN + row0, pid_n * BLOCK_N], y.to(tl.float16))
        else:
            out = y_ptr + (MARGIN + offs_m)[:, None] * OC + offs_n[None, :]
            ok = (offs_m < P)[:, None] & col_ok[None, :]
            if INT8_OUT:
                q = tl.floor(y * out_inv_scale + 0.5)
                q = tl.minimum(tl.maximum(q, -127.0), 127.0)
                q = tl.where(interior[:, None], q, 0.0)
                tl.store(out, q.to(tl.int8), mask=ok)
            else:
                tl.store(out, y.to(tl.float16), mask=ok)


def run(x, shape, w, scale, bias, relu, out_scale, per_sm, flat, tma, stages=3, bm=128, bn=128, bk=128, warps=4):
    oc, channels = w.shape[0], x.shape[1]
    if out_scale is None:
        y = torch.empty((shape.rows, oc), dtype=torch.float16, device=x.device)
    else:
        y = shape.empty(oc, x.device)
    tiles = triton.cdiv(shape.pixels, bm) * triton.cdiv(oc, bn)
    programs = min(tiles, SMS * per_sm)
    kernel[(programs,)](
        TensorDescriptor.from_tensor(x, [bm, bk]), TensorDescriptor.from_tensor(w, [bn, bk]),
        TensorDescriptor.from_tensor(y, [bm, bn]) if tma else None, scale, bias, y,
        1.0 / out_scale if out_scale else 1.0, shape.pixels, shape.height + 2, shape.width + 2, channels, oc,
        shape.margin, RELU=relu, INT8_OUT=out_scale is not None, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
        GROUP_M=8, PROGRAMS=programs, FLAT=flat, TMA=tma, num_stages=stages, num_warps=warps)
    return y


def bench(fn, n=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n


CHECK = "--check" in sys.argv
B = 2 if CHECK else 32
DEV = "cuda" if CUDA else "cpu"
budget_s = float(sys.argv[1]) if len(sys.argv) > 1 and not CHECK else 240
print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0) if CUDA else "cpu", flush=True)
t_start = time.time()
variants = [  # (programs a multiprocessor, flatten, TMA store, stages)
    (2, True, False, 3), (2, True, True, 3), (2, False, False, 3), (1, True, False, 4),
    (1, True, True, 3), (2, False, True, 3), (1, True, False, 3),
]
shapes = [(100, 2376), (100, 256), (50, 2376)]  # P3's class conv, a P3 tower conv, P4's class conv
for H, OC in [(9, 296), (9, 256)] if CHECK else shapes:  # 6 and 4 tiles, 1-2 programs
    C = 256
    shape = tc.PaddedShape(B, H, H)
    g = torch.Generator(device=DEV).manual_seed(0)
    x = shape.pack(torch.randn(B, H, H, C, device=DEV, generator=g).relu(), 0.03)
    wq, wsc = tc.quantize_weight(torch.randn(OC, C, 3, 3, device=DEV, generator=g) * 0.02)
    scale = (0.03 * wsc).float()
    bias = torch.randn(OC, device=DEV, generator=g)
    out_scale = None if OC > 256 else 0.05
    ops = 2 * B * H * H * OC * C * 9
    lib = lambda: tc.conv3x3(x, shape, wq, scale, bias, relu=True, out_scale=out_scale)  # noqa: E731
    ref = lib()
    ref_full = ref if out_scale is not None else None
    lib_ms = [bench(lib) if CUDA else 1.0]
    print(f"P H{H} OC{OC}: library {tc.BLOCKS}: {lib_ms[0]:.3f} ms {ops / lib_ms[0] / 1e9:.0f} TOPS", flush=True)
    for per_sm, flat, tma, stages in variants:
        if time.time() - t_start > budget_s:
            print("  budget spent", flush=True)
            break
        name = f"{per_sm}/SM flat={flat} tma={tma} st{stages}"
        try:
            y = run(x, shape, wq, scale, bias, True, out_scale, per_sm, flat, tma, stages)
            if out_scale is None:
                same = torch.equal(shape.interior(y), ref)
            else:
                same = torch.equal(y, ref_full)
            ms = bench(lambda: run(x, shape, wq, scale, bias, True, out_scale, per_sm, flat, tma, stages)) if CUDA else 1.0
            print(f"  {name}: {ms:.3f} ms {ops / ms / 1e9:.0f} TOPS same={same}", flush=True)
        except Exception as err:  # a variant that does not compile is a finding, not the end
            print(f"  {name}: FAILED {type(err).__name__} {str(err)[:200]}", flush=True)
    lib_ms.append(bench(lib) if CUDA else 1.0)
    print(f"  library again: {lib_ms[1]:.3f} ms", flush=True)
print("done", flush=True)
