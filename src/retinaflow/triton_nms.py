"""Greedy NMS on the GPU in one Triton kernel: for each image the keep mask of
batched_nms._greedy_fixed_point(batched_nms._suppression(ranked, threshold), valid), bit for
bit, with no [B, P, P] matrix and no host sync.

One program per image walks the image's boxes in rank order (best first) as torchvision's
CPU kernel does: box i, unless already suppressed, suppresses every later box j whose IoU
with it is over the threshold; with a limit, the walk stops at the limit-th kept box. The
image's boxes live in registers as four [BLOCK] vectors (x1, y1, x2, y2); each of the P
sequential steps is vector work over them (an IoU row and a one-element reduction that reads
box i's state). One program per image is enough: a batch
of 32 images fills 32 of the H200's SMs, and within an image the steps depend on one
another, so more programs would only wait. More boxes than the registers hold (MAX_BOXES) go
through the tiled form of the walk (`_greedy_nms_tiled_kernel`): a tile of TILE boxes first
meets every box kept in the earlier tiles, kept in a scratch list in global memory (a CTA
barrier between tiles makes one thread's stores seen by all), then is walked the same way.

Exactness: every operation is rounded in float32 in torchvision's order (batched_nms's
docstring), and the comparison is with `threshold_below(threshold, float32)` (a float32
value, so `iou > bar` is the same whether Triton types the argument fp32 or fp64). What
Triton's sources say (paths in its repository; the 3.6.0 wheel, the GPU machine's release,
and the 3.8.0 install here hold the Python files, the C++ is compiled into libtriton.so):
- `a / b` on float32 is arith.divf, which the NVIDIA backend lowers to llvm.nvvm.div.full,
  i.e. div.full.f32, an approximation (up to 2 ulp): FDivOpConversion in
  third_party/nvidia/lib/TritonNVIDIAGPUToLLVM/ElementwiseOpToLLVM.cpp (read in the stored
  repository, commit 0043a8d8; libtriton.so of 3.6.0 and 3.8.0 both hold the names
  llvm.nvvm.div.full and llvm.nvvm.div.rn.f). `tl.div_rn` (python/triton/language/math.py,
  a builtin in 3.6 and 3.8, float32 only) emits tt.precise_divf, which the same file lowers
  to llvm.nvvm.div.rn.f, the IEEE round-to-nearest division: the kernel divides with it. In
  the interpreter both are numpy's float32 divide (python/triton/runtime/interpreter.py:
  create_fdiv, create_precise_divf).
- Multiply-add fusion: CUDAOptions.enable_fp_fusion (third_party/nvidia/backend/compiler.py,
  default knobs.language.default_fp_fusion, True) goes to LLVM's translate_to_asm and, when
  False, gives ptxas --fmad=false; a launch keyword that names an option field sets it
  (python/triton/runtime/jit.py: backend.parse_options(kwargs); an unknown keyword raises),
  in 3.6 and 3.8 alike. The launch passes enable_fp_fusion=False, or (area_i + area_j) -
  w * h could become one fma. The interpreter drops launch keywords that are not the
  kernel's arguments, and numpy does not fuse.
Not used: libdevice (its flush-to-zero switch, enable_reflect_ftz, touches only libdevice).

The interpreter (triton_setup): where PyTorch sees no CUDA GPU the tests run this kernel on
the CPU; it uses builtins only, and tl.reduce with triton_setup.sum_combine for a sum.
"""

from __future__ import annotations

import torch

from .triton_setup import sum_combine  # first: sets up the interpreter on a machine without CUDA

import triton  # noqa: E402  isort: skip
import triton.language as tl  # noqa: E402  isort: skip

from .batched_nms import TRITON_MAX_BOXES, threshold_below  # noqa: E402  isort: skip

# Boxes an image the one-tile kernel holds in registers (BLOCK = the next power of two at or
# above P): 4 coordinates, the area and two flags of 8,192 boxes would spill out of a
# program's registers. Wider lists (an image's whole candidate list, up to 5,000, where its
# best 1,000 keep too few) take the tiled kernel, TILE boxes at a time.
MAX_BOXES = TRITON_MAX_BOXES
TILE = 1024


@triton.jit
def _boxes_at(box_base, offs, inside):
    """The boxes at `offs` (x1, y1, x2, y2 vectors; zeros outside), and their areas."""
    x1 = tl.load(box_base + offs * 4, mask=inside, other=0.0)
    y1 = tl.load(box_base + offs * 4 + 1, mask=inside, other=0.0)
    x2 = tl.load(box_base + offs * 4 + 2, mask=inside, other=0.0)
    y2 = tl.load(box_base + offs * 4 + 3, mask=inside, other=0.0)
    return x1, y1, x2, y2, (x2 - x1) * (y2 - y1)


@triton.jit
def _box(pointer):
    """One box's x1, y1, x2, y2 (scalars) at `pointer`."""
    return tl.load(pointer), tl.load(pointer + 1), tl.load(pointer + 2), tl.load(pointer + 3)


@triton.jit
def _iou_row(bx1, by1, bx2, by2, x1, y1, x2, y2, area):
    """IoU of box b (scalars; the earlier, kept box) with every box of the vectors, each
    operation rounded in float32 in torchvision's order: (area_b + area_j) - inter."""
    b_area = (bx2 - bx1) * (by2 - by1)
    w = tl.maximum(0.0, tl.minimum(x2, bx2) - tl.maximum(x1, bx1))
    h = tl.maximum(0.0, tl.minimum(y2, by2) - tl.maximum(y1, by1))
    inter = w * h
    return tl.div_rn(inter, (b_area + area) - inter)


@triton.jit
def _greedy_nms_kernel(
    boxes_ptr,  # [B, P, 4] float32, contiguous, in rank order (best first)
    valid_ptr,  # [B, P] uint8 (0/1)
    keep_ptr,  # [B, P] uint8 out (0/1)
    P,
    bar,  # float32: threshold_below(threshold, float32); suppressed where iou > bar
    LIMIT,  # the walk stops once this many boxes are kept (P: never)
    BLOCK: tl.constexpr,
):
    image = tl.program_id(0)
    box_base = boxes_ptr + image * P * 4
    offs = tl.arange(0, BLOCK)
    inside = offs < P
    x1, y1, x2, y2, area = _boxes_at(box_base, offs, inside)
    valid = tl.load(valid_ptr + image * P + offs, mask=inside, other=0)
    none = tl.full((BLOCK,), 0, tl.int32)
    removed = tl.where(valid != 0, none, none + 1)  # 1: suppressed, padding or past P
    i = P * 0  # int32 scalars (loop-carried: a constexpr 0 would change type in the loop)
    kept = P * 0
    while (i < P) & (kept < LIMIT):
        # box i's state from the register vector: a reduction with one nonzero term
        removed_i = tl.reduce(tl.where(offs == i, removed, none), 0, sum_combine)
        if removed_i == 0:  # a suppressed box suppresses nothing: its step is skipped
            kept += 1
            bx1, by1, bx2, by2 = _box(box_base + i * 4)
            iou = _iou_row(bx1, by1, bx2, by2, x1, y1, x2, y2, area)
            suppressed = (offs > i) & (iou > bar)
            removed = tl.where(suppressed, none + 1, removed)
        i += 1
    # valid, no kept box before it suppressed it, and reached before the walk stopped
    keep = (removed == 0) & (offs < i)
    tl.store(keep_ptr + image * P + offs, keep.to(tl.uint8), mask=inside)


@triton.jit
def _greedy_nms_tiled_kernel(
    boxes_ptr,  # [B, P, 4] float32, contiguous, in rank order (best first)
    valid_ptr,  # [B, P] uint8 (0/1)
    keep_ptr,  # [B, P] uint8 out (0/1), zeros on entry
    kept_ptr,  # [B, P, 4] float32 scratch: each image's kept boxes so far, in order
    P,
    bar,  # float32: threshold_below(threshold, float32); suppressed where iou > bar
    LIMIT,  # the walk stops once this many boxes are kept (P: never)
    BLOCK: tl.constexpr,
):
    """_greedy_nms_kernel's walk over any number of boxes, a tile of BLOCK at a time: a
    tile's boxes first meet every box kept in the earlier tiles (kept_ptr), then the tile is
    walked as the one-tile kernel walks its boxes, its kept boxes appended to kept_ptr."""
    image = tl.program_id(0).to(tl.int64)
    box_base = boxes_ptr + image * P * 4
    kept_base = kept_ptr + image * P * 4
    lanes = tl.arange(0, BLOCK)
    none = tl.full((BLOCK,), 0, tl.int32)
    kept = P * 0  # int32 scalars (loop-carried)
    start = P * 0
    while (start < P) & (kept < LIMIT):
        offs = start + lanes
        inside = offs < P
        x1, y1, x2, y2, area = _boxes_at(box_base, offs, inside)
        valid = tl.load(valid_ptr + image * P + offs, mask=inside, other=0)
        removed = tl.where(valid != 0, none, none + 1)  # 1: suppressed, padding or past P
        k = P * 0
        while k < kept:  # the earlier tiles' kept boxes, each before every box here
            kx1, ky1, kx2, ky2 = _box(kept_base + k * 4)
            iou = _iou_row(kx1, ky1, kx2, ky2, x1, y1, x2, y2, area)
            removed = tl.where(iou > bar, none + 1, removed)
            k += 1
        i = P * 0  # the walk within the tile, as _greedy_nms_kernel's
        while (i < BLOCK) & (start + i < P) & (kept < LIMIT):
            removed_i = tl.reduce(tl.where(lanes == i, removed, none), 0, sum_combine)
            if removed_i == 0:
                bx1, by1, bx2, by2 = _box(box_base + (start + i) * 4)
                tl.store(kept_base + kept * 4, bx1)  # for the later tiles
                tl.store(kept_base + kept * 4 + 1, by1)
                tl.store(kept_base + kept * 4 + 2, bx2)
                tl.store(kept_base + kept * 4 + 3, by2)
                kept += 1
                iou = _iou_row(bx1, by1, bx2, by2, x1, y1, x2, y2, area)
                suppressed = (lanes > i) & (iou > bar)
                removed = tl.where(suppressed, none + 1, removed)
            i += 1
        keep = (removed == 0) & (lanes < i)
        tl.store(keep_ptr + image * P + offs, keep.to(tl.uint8), mask=inside)
        # the kept boxes stored above, by whichever threads, read by all in the next tile
        tl.debug_barrier()
        start += BLOCK


def warps_for(block: int) -> int:
    """Warps for a BLOCK-wide program: 4 elements a thread (8 warps at 1024, 16 at 2048).
    On the H200, for 32 images x 1,000 boxes: 0.53-0.84 ms at 8 warps, 0.77-1.34 at 4, 2.7-5.0
    at 1 (the more boxes suppressed, the more steps skipped; benchmarks/gpu-h200.md)."""
    return max(1, min(16, block // 128))


def greedy_nms_ranked(
    ranked_boxes: torch.Tensor,
    valid: torch.Tensor,
    threshold: float,
    limit: int | None = None,
    tile: int | None = None,
):
    """Keep mask [B, P] bool, in rank order, of greedy NMS on `ranked_boxes` [B, P, 4]
    (float32, xyxy, finite, best first) with `valid` [B, P] (entries not valid never kept,
    never suppressing): equal to batched_nms._greedy_fixed_point(_suppression(ranked_boxes,
    threshold), valid). `limit`: only each image's first `limit` kept boxes (greedy NMS
    decides a box from the boxes before it alone, so the walk stops there: the
    post-processing keeps detections_per_img, 300, of up to 1,000 candidates).
    Up to MAX_BOXES boxes an image run in one tile, more in tiles of TILE (`tile`: of that
    many, a power of two, whatever P: the tests' small tiles)."""
    n, p, _ = ranked_boxes.shape
    if ranked_boxes.dtype != torch.float32:
        raise ValueError(f"the NMS kernel takes float32 boxes, got {ranked_boxes.dtype}")
    if tile is not None and (tile < 16 or tile & (tile - 1)):
        raise ValueError(f"the NMS kernel's tile must be a power of two of 16 or more, not {tile}")
    if n * p * 4 >= 2**31:
        raise ValueError(f"{n} images x {p} boxes: the kernel's int32 offsets overflow")
    keep = torch.zeros(n, p, dtype=torch.bool, device=ranked_boxes.device)
    if n == 0 or p == 0:
        return keep
    bar = threshold_below(threshold, torch.float32)
    limit = p if limit is None else max(0, limit)
    if tile is not None or p > MAX_BOXES:
        tile = tile or TILE
        _greedy_nms_tiled_kernel[(n,)](
            ranked_boxes.contiguous(),
            valid.contiguous().view(torch.uint8),
            keep.view(torch.uint8),
            torch.empty(n, p, 4, device=ranked_boxes.device),
            p,
            bar,
            limit,
            BLOCK=tile,
            num_warps=warps_for(tile),
            enable_fp_fusion=False,
        )
        return keep
    block = max(16, triton.next_power_of_2(p))
    _greedy_nms_kernel[(n,)](
        ranked_boxes.contiguous(),
        valid.contiguous().view(torch.uint8),
        keep.view(torch.uint8),
        p,
        bar,
        limit,
        BLOCK=block,
        num_warps=warps_for(block),
        enable_fp_fusion=False,
    )
    return keep
