"""fp16 vs int8 heads (the runner as the DAG opens it: compile default + CUDA graph), random
MLPerf weights, calibrated on random images; then the device post-processing on their maps."""
import time, json, sys, torch
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.model.int8_head import Int8Head, calibrate
from retinaflow.runtime.torch_runner import TorchRunner, TorchOptions
from retinaflow.detector import Detector
from retinaflow.postprocess import PostprocessSettings
torch.manual_seed(0)
dev = "cuda"
model = build_retinanet("resnext50_32x4d_fpn", 264, 800)
torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, -1.0)
head = HeadMaps(model).eval()
with torch.inference_mode():
    amax = calibrate(head.to(dev), [torch.rand(8, 3, 800, 800, device=dev) for _ in range(2)])
def ev(fn, n):
    torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / n
out = {}
for b in (32,):
    x = torch.rand(b, 3, 800, 800, device=dev)
    runners = {}
    for name in ("fp16", "int8"):
        h = HeadMaps(model).eval() if name == "fp16" else Int8Head(HeadMaps(model).eval(), amax)
        import copy; h = copy.deepcopy(h)
        t0 = time.time()
        r = TorchRunner(h, device=dev, options=TorchOptions(dtype="float16", channels_last=True, compile="default", cuda_graphs=True), batch_size=b)
        with torch.inference_mode():
            xi = r.to_device(x); r.run_on_device(xi); torch.cuda.synchronize()
        print(f"b{b} {name}: ready in {time.time()-t0:.0f}s", r.graphs_reason, flush=True)
        runners[name] = (r, xi)
    maps = {}
    for rnd in range(3):  # interleaved rounds
        for name, (r, xi) in runners.items():
            with torch.inference_mode():
                ms = ev(lambda: r.run_on_device(xi), 10)
            out.setdefault(f"b{b} {name}", []).append(ms)
    for name, (r, xi) in runners.items():
        with torch.inference_mode():
            maps[name] = r.run_on_device(xi)
        ms = sorted(out[f"b{b} {name}"])[1]
        print(f"b{b} {name} head: {ms:.2f} ms/batch, {b/ms*1e3:.0f} img/s", flush=True)
    cos = [torch.nn.functional.cosine_similarity(a.float().flatten(), c.float().flatten(), dim=0).item() for a, c in zip(maps["int8"], maps["fp16"])]
    print(f"b{b} int8 vs fp16 map cosine: min {min(cos):.5f}", [round(c, 5) for c in cos], flush=True)
    det = Detector(None, "resnext50_32x4d_fpn", 800, PostprocessSettings(0.05, 1000, 0.5, 300))
    for name in ("fp16", "int8"):
        m = maps[name]
        print(f"  {name} maps contiguous NCHW: {m[0].is_contiguous()}, NHWC: {m[0].permute(0,2,3,1).is_contiguous()}", flush=True)
        with torch.inference_mode():
            det.postprocess_maps(m, [(1, 1)] * b)
            ms = ev(lambda: det.postprocess_maps(m, [(1, 1)] * b), 5)
        print(f"b{b} {name} postprocess (batched NMS): {ms:.2f} ms/batch, {ms/b:.3f} ms/img", flush=True)
    del runners, maps; torch.cuda.empty_cache()
