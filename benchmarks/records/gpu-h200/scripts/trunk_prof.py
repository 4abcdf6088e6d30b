"""Where the fp16 trunk's 17.9 ms (batch 32, 800x800) go, and what 1x1 convs would cost in fp8/int8."""
import collections, torch, torch.nn as nn, torch.nn.functional as F
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
torch.backends.cudnn.benchmark = True
dev, B = "cuda", 32
print(torch.__version__, torch.cuda.get_device_name(0), flush=True)
def bench(fn, n=10):
    for _ in range(3): fn()
    torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / n
torch.manual_seed(0)
head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval().to(dev).half().to(memory_format=torch.channels_last)
x = torch.rand(B, 3, 800, 800, device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
shapes = collections.Counter()
def hook(mod, inp, out):
    i = inp[0]
    shapes[(mod.in_channels, mod.out_channels, mod.kernel_size[0], mod.stride[0], mod.groups, i.shape[2], i.shape[3])] += 1
hs = [m.register_forward_hook(hook) for m in head.backbone.modules() if isinstance(m, nn.Conv2d)]
with torch.inference_mode():
    head.features(x)
for h in hs: h.remove()
with torch.inference_mode():
    print("trunk eager", round(bench(lambda: head.features(x), 5), 2), "ms", flush=True)
    feats = torch.compile(head.features, dynamic=False)
    print("trunk compiled default", round(bench(lambda: feats(x)), 2), "ms", flush=True)
    body = torch.compile(lambda t: head.backbone.body((t - head.mean) / head.std), dynamic=False)
    print("body only compiled", round(bench(lambda: body(x)), 2), "ms", flush=True)
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(2): feats(x)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=100), flush=True)
    total = {"cudnn": 0.0, "fp8": 0.0, "int8": 0.0}
    print("cin cout k s g H W count | cudnn fp16 ms (TFLOPS) | fp8 scaled_mm ms | int_mm ms | fp16 mm ms", flush=True)
    for (cin, cout, k, s, g, H, W), n in sorted(shapes.items(), key=lambda kv: -kv[0][5]):
        xi = torch.randn(B, cin, H, W, device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
        w = (torch.randn(cout, cin // g, k, k, device=dev, dtype=torch.float16) * 0.05).to(memory_format=torch.channels_last)
        ms = bench(lambda: F.conv2d(xi, w, None, s, k // 2, 1, g))
        Ho, Wo = (H + 2 * (k // 2) - k) // s + 1, (W + 2 * (k // 2) - k) // s + 1
        flops = 2 * B * Ho * Wo * cout * cin // g * k * k
        row = f"{cin} {cout} {k} {s} {g} {H} {W} x{n} | {ms:.3f} ({flops/ms/1e9:.0f})"
        total["cudnn"] += ms * n
        if k == 1 and g == 1:
            xs = xi[:, :, ::s, ::s] if s > 1 else xi
            a = xs.permute(0, 2, 3, 1).reshape(-1, cin)
            a8 = a.to(torch.float8_e4m3fn); b8 = w.view(cout, cin).to(torch.float8_e4m3fn).t()
            one = torch.ones((), device=dev)
            bias = torch.zeros(cout, device=dev, dtype=torch.float16)
            try:
                f8 = bench(lambda: torch._scaled_mm(a8, b8, one, one, bias=bias, out_dtype=torch.float16))
            except Exception as err:
                f8 = float("nan"); print("scaled_mm", str(err)[:200])
            ai = a.to(torch.int8).contiguous(); bi = w.view(cout, cin).to(torch.int8).t()
            try:
                i8 = bench(lambda: torch._int_mm(ai, bi))
            except Exception as err:
                i8 = float("nan"); print("int_mm", str(err)[:200])
            wm = w.view(cout, cin).t()
            mm = bench(lambda: a @ wm)
            row += f" | {f8:.3f} | {i8:.3f} | {mm:.3f}"
            total["fp8"] += f8 * n; total["int8"] += i8 * n
        else:
            total["fp8"] += ms * n; total["int8"] += ms * n
        print(row, flush=True)
    print("sum of convs alone, ms:", {k: round(v, 2) for k, v in total.items()}, flush=True)
    import torch._inductor.config as ic
    ic.conv_1x1_as_mm = True; ic.freezing = True
    torch._dynamo.reset()
    feats2 = torch.compile(head.features, dynamic=False)
    print("trunk compiled conv_1x1_as_mm+freezing", round(bench(lambda: feats2(x)), 2), "ms", flush=True)
