"""Eighth lease, third call (lend8_prof.py): per kernel, the post-processing on dense maps and in place; from lend8.py: the int8 head's maps lent and read in place (issue 13).
1. The post-processing of a batch of 32 on maps as the int8 head now hands them over (views of
   padded grids' interiors, the frame holding garbage above every logit) against the same
   maps dense (channels-last, what copy_interior made): wall and GPU kernel time, and the
   detections, which must be equal.
2. The torch-int8 head (batch 32, compiled, fused trunk, CUDA graph): its maps copied out of
   the graph (a plain call) against lent (runner.lend: the graph's own outputs), and the
   detections of its real maps read in place against dense copies of them."""
import copy, os, sys, time, torch
from torch.profiler import profile, ProfilerActivity
from retinaflow import device_postprocess as dp
from retinaflow.detector import Detector
from retinaflow.model.architectures import anchor_generator, build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.model.int8_head import Int8Head, calibrate
from retinaflow.postprocess import PostprocessSettings, level_anchors
from retinaflow.runtime.torch_runner import TorchOptions, TorchRunner
from retinaflow.triton_conv import PaddedShape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grouped_conv_bench import bench  # noqa: E402  the records' CUDA-event timer

S = PostprocessSettings(0.05, 1000, 0.5, 300)
N = 32
sizes = [(100, 100), (50, 50), (25, 25), (13, 13), (7, 7)]
anchors = [a.cuda() for a in level_anchors(anchor_generator("resnext50_32x4d_fpn"), (800, 800), sizes)]
orig = [(800, 800)] * N
g = torch.Generator(device="cuda").manual_seed(0)
cm = [(torch.randn(N, h, w, 9 * 264, device="cuda", generator=g) * 1.5 - 8).half().permute(0, 3, 1, 2) for h, w in sizes]
bm = [(torch.randn(N, h, w, 36, device="cuda", generator=g) * 0.1).half().permute(0, 3, 1, 2) for h, w in sizes]


def framed(m, garbage=30.0):
    n, c, h, w = m.shape
    shape = PaddedShape(n, h, w)
    buf = torch.full((shape.rows, c), garbage, dtype=m.dtype, device=m.device)
    shape.interior(buf).copy_(m.permute(0, 2, 3, 1))
    return shape.interior(buf).permute(0, 3, 1, 2)


def same(a, b):
    return all(torch.equal(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in ("boxes", "scores", "labels"))


fm = [framed(m) for m in cm + bm]
for name, (c, b) in (("dense", (cm, bm)), ("in place", (fm[:5], fm[5:]))):
    run = lambda: dp.device_postprocess_batch(c, b, anchors, (800, 800), orig, S).to_host()
    for _ in range(3): run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5): run()
        torch.cuda.synchronize()
    ka = prof.key_averages()
    print(f"== {name}: GPU kernel time {sum(e.self_device_time_total for e in ka) / 5e3:.2f} ms a batch")
    print(ka.table(sort_by="self_cuda_time_total", row_limit=16, max_name_column_width=60))
