import time, torch
from torch.profiler import profile, ProfilerActivity
from retinaflow import device_postprocess as dp
from retinaflow.radix_topk import top_k_levels
from retinaflow.model.architectures import anchor_generator
from retinaflow.postprocess import PostprocessSettings, level_anchors
S = PostprocessSettings(0.05, 1000, 0.5, 300)
N = 32
sizes = [(100, 100), (50, 50), (25, 25), (13, 13), (7, 7)]
anchors = [a.cuda() for a in level_anchors(anchor_generator("resnext50_32x4d_fpn"), (800, 800), sizes)]
orig = [(800, 800)] * N
g = torch.Generator(device="cuda").manual_seed(0)
cm = [(torch.randn(N, h, w, 9 * 264, device="cuda", generator=g) * 1.5 - 8).half().permute(0, 3, 1, 2) for h, w in sizes]
bm = [(torch.randn(N, h, w, 36, device="cuda", generator=g) * 0.1).half().permute(0, 3, 1, 2) for h, w in sizes]
flat = [c.permute(0, 2, 3, 1).reshape(N, -1) for c in cm]
run = lambda: dp.device_postprocess_batch(cm, bm, anchors, (800, 800), orig, S).to_host()
for _ in range(3): run()
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10): run()
torch.cuda.synchronize(); print(f"wall {(time.perf_counter()-t)*100:.2f} ms/batch")
t = time.perf_counter()
for _ in range(10): top_k_levels(flat, 1000)
torch.cuda.synchronize(); print(f"top_k_levels wall {(time.perf_counter()-t)*100:.2f} ms/batch")
for name, fn in (("whole", run), ("topk", lambda: top_k_levels(flat, 1000))):
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(5): fn()
        torch.cuda.synchronize()
    ka = prof.key_averages()
    cuda_total = sum(e.self_device_time_total for e in ka) / 5e3
    print(f"== {name}: GPU kernel time {cuda_total:.2f} ms/call")
    print(ka.table(sort_by="self_cuda_time_total", row_limit=14, max_name_column_width=70))
