import sys, time, copy, torch, triton, torch.nn.functional as F
sys.path.insert(0, __import__("os").path.dirname(__file__))  # old_dp, old_nms / conv2 beside it
from conv2 import padded, run
from retinaflow.triton_conv import quantize, quantize_weight
triton.set_allocator(lambda size, align, stream: torch.empty(size, device="cuda", dtype=torch.int8))
dev = "cuda"
def bench(fn, n=20):
    for _ in range(3): fn()
    torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / n
B = 32
for (H, OC) in [(100, 256), (100, 2376), (50, 256)]:
    C = 256
    flops = 2 * B * H * H * OC * C * 9
    x = torch.randn(B, C, H, H, device=dev).relu(); w = torch.randn(OC, C, 3, 3, device=dev) * 0.02; b = torch.randn(OC, device=dev)
    ref = F.conv2d(x.half(), w.half(), b.half(), padding=1).relu().float().permute(0, 2, 3, 1)
    xn = x.permute(0, 2, 3, 1).contiguous()
    for kind in ("int8", "fp8"):
        xs = x.abs().max().item() / (127 if kind == "int8" else 448)
        wq, wsc = quantize_weight(w, kind); sc = (xs * wsc).float()
        margin = H + 3 + 256
        xbuf = padded(quantize(xn, xs, kind), margin)
        for tma in (False, True):
            for blocks in [(128, 128, 3, 8), (128, 256, 3, 8), (128, 256, 4, 8), (256, 128, 3, 8), (128, 128, 4, 4), (64, 256, 4, 4)]:
                try:
                    f = lambda: run(xbuf, wq, sc, b, B, H, H, 0, 1.0, blocks, tma)
                    ms = bench(f)
                    y = f()[margin: margin + B * (H + 2) ** 2].view(B, H + 2, H + 2, OC)[:, 1:-1, 1:-1].float()
                    rel = ((y - ref).norm() / ref.norm()).item()
                    print(f"H{H} OC{OC} {kind} tma={tma} {blocks}: {ms:.3f} ms {flops/ms/1e9:.0f} TFLOPS rel {rel:.4f}", flush=True)
                except Exception as err:
                    print(f"H{H} OC{OC} {kind} tma={tma} {blocks}: FAILED {str(err)[:300]}", flush=True)
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.model.fold import fold_batchnorms
head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval()
folded = copy.deepcopy(head); print("folded", fold_batchnorms(folded), flush=True)
x = torch.rand(B, 3, 800, 800, device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
torch.backends.cudnn.benchmark = True
with torch.inference_mode():
    for name, h in (("folded", folded), ("plain", head)):
        h = h.to(dev).half().to(memory_format=torch.channels_last)
        print(f"eager {name}: {bench(lambda: h(x), 5):.1f} ms", flush=True)
        t0 = time.time(); c = torch.compile(h, dynamic=False); c(x); torch.cuda.synchronize()
        ms = bench(lambda: c(x), 10)
        print(f"compiled {name} ({time.time()-t0:.0f}s): {ms:.1f} ms/b32, {B/ms*1e3:.0f} img/s", flush=True)
        if name == "folded":
            from torch.profiler import profile, ProfilerActivity
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(3): c(x)
                torch.cuda.synchronize()
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=80), flush=True)
