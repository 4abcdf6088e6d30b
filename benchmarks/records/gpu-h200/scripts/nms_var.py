import torch, triton, triton.language as tl
from retinaflow.triton_setup import sum_combine
from retinaflow import triton_nms, batched_nms
from retinaflow.batched_nms import threshold_below

@triton.jit
def _skip_kernel(boxes_ptr, valid_ptr, keep_ptr, P, bar, BLOCK: tl.constexpr, PREFETCH: tl.constexpr):
    image = tl.program_id(0)
    box_base = boxes_ptr + image * P * 4
    offs = tl.arange(0, BLOCK)
    inside = offs < P
    x1 = tl.load(box_base + offs * 4, mask=inside, other=0.0)
    y1 = tl.load(box_base + offs * 4 + 1, mask=inside, other=0.0)
    x2 = tl.load(box_base + offs * 4 + 2, mask=inside, other=0.0)
    y2 = tl.load(box_base + offs * 4 + 3, mask=inside, other=0.0)
    valid = tl.load(valid_ptr + image * P + offs, mask=inside, other=0)
    area = (x2 - x1) * (y2 - y1)
    zero = tl.full((BLOCK,), 0.0, tl.float32)
    none = tl.full((BLOCK,), 0, tl.int32)
    removed = tl.where(valid != 0, none, none + 1)
    for i in range(P):
        removed_i = tl.reduce(tl.where(offs == i, removed, none), 0, sum_combine)
        if removed_i == 0:
            bx1 = tl.load(box_base + i * 4)
            by1 = tl.load(box_base + i * 4 + 1)
            bx2 = tl.load(box_base + i * 4 + 2)
            by2 = tl.load(box_base + i * 4 + 3)
            b_area = (bx2 - bx1) * (by2 - by1)
            w = tl.maximum(zero, tl.minimum(x2, bx2) - tl.maximum(x1, bx1))
            h = tl.maximum(zero, tl.minimum(y2, by2) - tl.maximum(y1, by1))
            inter = w * h
            iou = tl.div_rn(inter, (b_area + area) - inter)
            suppressed = (offs > i) & (iou > bar)
            removed = tl.where(suppressed, none + 1, removed)
    keep = removed == 0
    tl.store(keep_ptr + image * P + offs, keep.to(tl.uint8), mask=inside)

def ev(fn, n=20):
    fn(); s, e = torch.cuda.Event(True), torch.cuda.Event(True); torch.cuda.synchronize()
    s.record()
    for _ in range(n): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / n

N, P = 32, 1000
for crowd in (120.0, 400.0):
    g = torch.Generator(device="cuda").manual_seed(1)
    xy = torch.rand(N, P, 2, device="cuda", generator=g) * (800 - crowd)
    wh = torch.rand(N, P, 2, device="cuda", generator=g) * crowd + 5
    boxes = torch.cat([xy, xy + wh], 2).contiguous()
    valid = torch.ones(N, P, dtype=torch.bool, device="cuda")
    bar = threshold_below(0.5, torch.float32)
    ref = triton_nms.greedy_nms_ranked(boxes, valid, 0.5)
    print(f"boxes up to {crowd} px: kept {int(ref.sum())} of {N*P}; current kernel {ev(lambda: triton_nms.greedy_nms_ranked(boxes, valid, 0.5)):.3f} ms")
    for warps in (1, 2, 4, 8):
        keep = torch.zeros(N, P, dtype=torch.bool, device="cuda")
        f = lambda: _skip_kernel[(N,)](boxes, valid.view(torch.uint8), keep.view(torch.uint8), P, bar, BLOCK=1024, PREFETCH=False, num_warps=warps, enable_fp_fusion=False)
        t = ev(f)
        print(f"  skip-suppressed, {warps} warps: {t:.3f} ms, equal {torch.equal(keep, ref)}")
