"""Where the device post-processing's time goes now (batched NMS), b32, 800x800, 264 classes,
maps as the head leaves them (channels-last fp16)."""
import time, torch
from torch.profiler import profile, ProfilerActivity
from retinaflow import device_postprocess as dp
from retinaflow.model.architectures import anchor_generator
from retinaflow.postprocess import PostprocessSettings, level_anchors

S = PostprocessSettings(0.05, 1000, 0.5, 300)
N = 32
sizes = [(100, 100), (50, 50), (25, 25), (13, 13), (7, 7)]
anchors = [a.cuda() for a in level_anchors(anchor_generator("resnext50_32x4d_fpn"), (800, 800), sizes)]
orig = [(800, 800)] * N
def timed(fn, n=10):
    fn(); torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n): out = fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1e3, out
for mean, std in ((-1.0, 0.05), (-8.0, 1.5), (-6.0, 1.0)):
    g = torch.Generator(device="cuda").manual_seed(0)
    cm = [(torch.randn(N, h, w, 9 * 264, device="cuda", generator=g) * std + mean).half().permute(0, 3, 1, 2) for h, w in sizes]
    bm = [(torch.randn(N, h, w, 36, device="cuda", generator=g) * 0.1).half().permute(0, 3, 1, 2) for h, w in sizes]
    frac = sum((torch.sigmoid(c.float()) > 0.05).sum().item() for c in cm) / sum(c.numel() for c in cm)
    ms, _ = timed(lambda: dp.device_postprocess_detections(cm, bm, anchors, (800, 800), orig, S))
    print(f"logits N({mean},{std}) above-thresh frac {frac:.2e}: whole {ms:.2f} ms/batch", flush=True)
    flat = [c.permute(0, 2, 3, 1).reshape(N, -1) for c in cm]
    ms, _ = timed(lambda: [f.topk(1000, dim=1) for f in flat])
    print(f"  topk 5 levels: {ms:.2f}", flush=True)
    ms, _ = timed(lambda: [(f > -2.9).sum(1) for f in flat])
    print(f"  one compare+sum pass 5 levels: {ms:.2f}", flush=True)
    ms, lv = timed(lambda: [dp._level_candidates(c, b, a, (800, 800), S) for c, b, a in zip(cm, bm, anchors)])
    print(f"  level candidates: {ms:.2f}", flush=True)
    image, boxes, scores, labels = (torch.cat(p) for p in zip(*lv))
    ms, _ = timed(lambda: dp.nms_per_image(image, boxes, scores, labels, N, S))
    print(f"  nms_per_image: {ms:.2f}", flush=True)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            dp.device_postprocess_detections(cm, bm, anchors, (800, 800), orig, S)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=22, max_name_column_width=60), flush=True)
