"""Greedy NMS for a batch of images at once, on their device: for each image the boxes that
torchvision's `nms` keeps, with no host round trip per image.

torchvision's kernels (csrc/ops/cpu/nms_kernel.cpp, cuda/nms_kernel.cu; read in its source)
take the boxes in `scores.sort(stable=true, dim=0, descending=true)` order (older releases'
CUDA kernel sorted unstably), and each box not yet suppressed is kept and suppresses every
later box j with

    w = max(0, min(x2_i, x2_j) - max(x1_i, x1_j)),  h = the same in y,  inter = w * h,
    area = (x2 - x1) * (y2 - y1),  iou = inter / ((area_i + area_j) - inter),  iou > threshold

every operation rounded in the boxes' dtype, the comparison made in double on the CPU
(`float > double`). Here the same operations run on whole [P, P] matrices per image, in the
same order, and the threshold is rounded down to the boxes' dtype, which gives the same
comparison (`threshold_below`). On CUDA torchvision compares against the threshold rounded
to nearest and nvcc may fuse its multiply-adds; its result can then differ from the CPU's
where an IoU is within an ulp of the threshold. This module gives the CPU kernel's result on
any device.

On CUDA, for up to triton_nms.MAX_BOXES boxes an image, the greedy pass runs in one Triton
kernel (triton_nms: one program per image, the same IoU operations, no host sync, no [B, P,
P] matrix). Otherwise it is a fixed point (`_greedy_fixed_point`), found by iterating one
batched step for all images together, with a host sync every CHECK_EVERY steps. Wider lists
(an image's whole candidate list, up to 5,000, where its best 1,000 keep fewer than
detections_per_img: on the CPU, 1 of the demo's first 16 images at 800 with trained-like
logits) go to the kernel's tiled form (triton_nms: tiles of 1,024 boxes, each meeting the
boxes kept before it) while TILED_WIDE_LISTS is on, as it is by default: on the H200 it gave
the fixed point's detections and took the post-processing of such a batch from 11.2-12.5 to
8.5-9.6 ms (benchmarks/gpu-h200.md, eleventh lease).
"""

from __future__ import annotations

import torch

IOU_CHUNK = 1 << 25  # IoU entries (float) computed at once: 128 MiB, a chunk of images
CHECK_EVERY = 4  # fixed-point steps between two convergence checks (one host sync each)


BACKENDS = ("auto", "torch", "triton")
TRITON_MAX_BOXES = 2048  # triton_nms.MAX_BOXES, here so that "auto" need not import triton
TILED_WIDE_LISTS = True  # "auto": wider lists in triton_nms's tiled kernel (else the torch one)


def batched_greedy_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    valid: torch.Tensor,
    threshold: float,
    *,
    backend: str = "auto",
    limit: int | None = None,
) -> torch.Tensor:
    """Keep mask [B, P] of torchvision's `nms(boxes[b][valid[b]], scores[b][valid[b]],
    threshold)` for each image b: the same boxes kept (a kept box's index in that call maps
    back to its position here). boxes [B, P, 4] (xyxy, finite), scores [B, P], valid [B, P];
    entries not valid are padding, never kept and never suppressing.

    The order is torchvision's CPU kernel's: scores descending, stably (equal scores keep
    their order along P), which `sort(stable=True)` gives here on any device.

    `backend`: "auto" runs the greedy pass in triton_nms's kernel for float32 boxes on CUDA
    and at most TRITON_MAX_BOXES an image (any number with TILED_WIDE_LISTS), else in torch
    (`_greedy_fixed_point`); "torch" or "triton" forces one (the tests run "triton" on the
    CPU, in Triton's interpreter).
    `limit`: each image's first `limit` kept boxes, by score, only (the Triton pass stops
    there)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is none of {BACKENDS}")
    if backend == "auto":
        backend = auto_backend(boxes.is_cuda, boxes.dtype, boxes.shape[1])
    order = _score_order(scores, valid)
    ranked = boxes.gather(1, order[:, :, None].expand(-1, -1, 4))
    valid_ranked = valid.gather(1, order)
    if backend == "triton":
        from .triton_nms import greedy_nms_ranked  # imports triton: only where it runs

        keep = greedy_nms_ranked(ranked, valid_ranked, threshold, limit)
    else:
        keep = _greedy_fixed_point(_suppression(ranked, threshold), valid_ranked)
        if limit is not None:
            keep &= keep.cumsum(1) <= limit
    return torch.zeros_like(keep).scatter_(1, order, keep)


def auto_backend(cuda: bool, dtype: torch.dtype, width: int) -> str:
    """The "auto" backend's choice for boxes on CUDA or not, of `dtype`, `width` an image."""
    fits = dtype == torch.float32 and (width <= TRITON_MAX_BOXES or TILED_WIDE_LISTS)
    return "triton" if cuda and fits else "torch"


def _score_order(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[B, P] positions by score, best first, stably; the padding last."""
    order = scores.sort(dim=1, descending=True, stable=True).indices
    padding_last = (~valid.gather(1, order)).to(torch.uint8).sort(dim=1, stable=True).indices
    return order.gather(1, padding_last)


def threshold_below(threshold: float, dtype: torch.dtype) -> float:
    """The largest value of `dtype` at or below `threshold`: for x of that dtype,
    x > threshold (in double, as torchvision's CPU kernel compares) iff x > this value.
    (If x > t_low then x >= the next value of the dtype above t_low, which is above
    threshold unless t_low == threshold; the converse holds as t_low <= threshold.)"""
    exact = torch.tensor(threshold, dtype=torch.float64)
    low = exact.to(dtype)
    if low.double() > exact:
        low = torch.nextafter(low, torch.tensor(-torch.inf, dtype=dtype))
    return float(low)


def _suppression(ranked: torch.Tensor, threshold: float) -> torch.Tensor:
    """S [B, P, P] bool: S[b, i, j] = ranked box i would suppress box j (j after i)."""
    n, p, _ = ranked.shape
    bar = threshold_below(threshold, ranked.dtype)
    later = torch.ones(p, p, dtype=torch.bool, device=ranked.device).triu_(1)
    out = torch.empty(n, p, p, dtype=torch.bool, device=ranked.device)
    step = max(1, IOU_CHUNK // max(1, p * p))
    for lo in range(0, n, step):
        torch.gt(_iou(ranked[lo : lo + step]), bar, out=out[lo : lo + step])
    return out.logical_and_(later)


def _iou(boxes: torch.Tensor) -> torch.Tensor:
    """[b, P, P] IoU of every pair, each operation rounded as in torchvision's kernels."""
    x1, y1, x2, y2 = (c.contiguous() for c in boxes.unbind(2))
    area = (x2 - x1) * (y2 - y1)
    w = torch.minimum(x2[:, :, None], x2[:, None, :]) - torch.maximum(
        x1[:, :, None], x1[:, None, :]
    )
    h = torch.minimum(y2[:, :, None], y2[:, None, :]) - torch.maximum(
        y1[:, :, None], y1[:, None, :]
    )
    inter = w.clamp_(min=0).mul_(h.clamp_(min=0))
    union = (area[:, :, None] + area[:, None, :]).sub_(inter)  # (area_i + area_j) - inter
    return inter.div_(union)


def _greedy_fixed_point(suppresses: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Greedy NMS's keep mask [B, P] in rank order, from S = `suppresses` [B, P, P].

    Greedy keeps G[i] = valid[i] and no j < i has G[j] and S[j, i]: a box is kept unless an
    earlier kept box suppresses it (torchvision's loop also skips suppressed boxes as
    targets, which changes nothing). Write F(k)[i] for that right-hand side with k in place
    of G. G is F's only fixed point: for k = F(k), k[0] = valid[0] = G[0], and if k equals G
    below i then k[i] = F(k)[i] depends on k[j < i] alone and equals G[i]. Iterating
    k_{t+1} = F(k_t) from k_0 = valid fixes at least one more entry per step: if k_t equals
    G below t, k_{t+1}[i] for i <= t reads only k_t[j < i], so k_{t+1} equals G below t + 1.
    Hence k_P = G, and a step that changes nothing has reached G. Each step is one batched
    op for every image; chains of suppressions, not P, set the number of steps (a handful
    on detections)."""
    keep = valid
    steps = 0
    while steps < valid.shape[1]:
        for _ in range(min(CHECK_EVERY, valid.shape[1] - steps)):
            previous, keep = keep, valid & ~(keep[:, :, None] & suppresses).any(1)
            steps += 1
        if torch.equal(previous, keep):  # one host sync for the whole batch
            break
    return keep
