import time, torch
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.model.int8_head import Int8Head, calibrate
from retinaflow import triton_conv as tc
torch.manual_seed(0); dev = "cuda"
model = build_retinanet("resnext50_32x4d_fpn", 264, 800)
head = HeadMaps(model).eval().to(dev)
with torch.inference_mode():
    amax = calibrate(head, [torch.rand(4, 3, 800, 800, device=dev)])
ih = Int8Head(head, amax).to(dev, dtype=torch.float16).to(memory_format=torch.channels_last)
def ev(fn, n=5):
    fn(); torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / n
x = torch.rand(32, 3, 800, 800, device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
with torch.inference_mode():
    feats = torch.compile(ih.trunk.features, dynamic=False)
    print("trunk compiled", ev(lambda: feats(x)), "ms", flush=True)
    f = feats(x)
    print("feature strides", f[0].shape, f[0].stride(), flush=True)
    print("heads eager", ev(lambda: ih.heads(f)), "ms", flush=True)
    shape = tc.PaddedShape(32, 100, 100)
    print("pack P3", ev(lambda: shape.pack(f[0].permute(0, 2, 3, 1), 0.1)), "ms", flush=True)
    placed = ih._on(f[0].device)
    layers = placed["cls", 0]
    xq = shape.pack(f[0].permute(0, 2, 3, 1), 0.1)
    for i, (w, s, b, relu, out) in enumerate(layers):
        print(f"P3 cls conv{i} relu={relu} out={out}", ev(lambda: tc.conv3x3(xq, shape, w, s, b, relu, out)), "ms", flush=True)
    w, s, b, relu, out = placed["box", 0][-1]
    print("P3 box final", ev(lambda: tc.conv3x3(xq, shape, w, s, b, relu, out)), "ms", flush=True)
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        ih.heads(f); torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60), flush=True)
