"""Ready for the thirteenth lease: where the trunk's ~11.5 ms a batch goes, conv by conv. The
twelfth lease's kernel profile of the whole head (lease12-d.txt) gave 8.03 ms to cuDNN's fp16
implicit GEMMs (xmma fprop, four tile shapes), 2.75 to cuBLASLt's 1x1s (nvjet, bias-ReLU
epilogue), 0.67 to the stem: which convs are the 8 ms (the 1x1s with their residual add, which
cuBLASLt's epilogue does not take; the grouped 3x3s; the FPN's) is not in a kernel's name.

The runner's fp16 trunk (fused, narrow groups merged on CUDA, channels-last, eager, no graph:
the same cuDNN and cuBLASLt calls as compiled, without inductor's few element-wise kernels),
each FoldedConv, ConvThenBias (FPN) and max pool inside a profiler range of its module's name;
per module: GPU ms a batch (the mean of 3 profiled calls), its shape, the bytes it must move
(input, output, residual, weight, once each) and its multiply-adds, so the achieved TB/s and
TFLOPS against the H200's ~4.3 TB/s copy and ~790 dense fp16 TFLOPS say which convs are far
from their floor. Totals by kind last.
python3 trunk_attr.py [--cpu]  (--cpu: the demo architecture at 64x64 on this CPU, float32, a
check of the script)."""
import collections
import sys

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from retinaflow.model.architectures import build_retinanet
from retinaflow.model.fused_backbone import ConvThenBias, FoldedConv
from retinaflow.model.head import HeadMaps
from retinaflow.runtime.torch_runner import TorchOptions, TorchRunner

CPU = "--cpu" in sys.argv
ARCH, SIZE, BATCH = ("demo", 64, 2) if CPU else ("resnext50_32x4d_fpn", 800, 32)
DEVICE = "cpu" if CPU else "cuda"
ROUNDS = 3
torch.manual_seed(0)
opts = TorchOptions(dtype="float32" if CPU else "float16", channels_last=not CPU,
                    compile="none", cuda_graphs=False, fuse_batch_norm=True)
runner = TorchRunner(HeadMaps(build_retinanet(ARCH, 264, SIZE)).eval(), 4, DEVICE, opts,
                     batch_size=BATCH)
print("runner:", {k: v for k, v in runner.settings().items()
                  if k in ("device_name", "fused_modules", "merged_groups", "torch", "cudnn")})
body = runner.head.backbone
shapes, ranges = {}, {}


def kind(module, x, residual):
    if isinstance(module, nn.MaxPool2d):
        return "max pool"
    conv = module
    k = tuple(conv.weight.shape[2:])
    if isinstance(module, ConvThenBias):
        return f"fpn {k[0]}x{k[1]}"
    if k == (7, 7):
        return "stem 7x7"
    if k == (1, 1):
        return "1x1 + add" if residual is not None else "1x1"
    return f"3x3 g{conv.groups}" if conv.groups > 1 else "3x3"


def pre(name):
    def hook(module, args, kwargs):
        x = args[0]
        residual = args[1] if len(args) > 1 else kwargs.get("residual")
        if name not in shapes:
            conv = module
            weight = getattr(conv, "weight", None)
            shapes[name] = dict(kind=kind(module, x, residual), x=tuple(x.shape), residual=residual,
                                weight=None if weight is None else tuple(weight.shape),
                                groups=getattr(conv, "groups", 1), item=x.element_size())
        ranges[name] = record_function(name)
        ranges[name].__enter__()
    return hook


def post(name):
    def hook(module, args, kwargs, out):
        ranges.pop(name).__exit__(None, None, None)
        s = shapes[name]
        if "y" not in s:
            s["y"] = tuple(out.shape)
    return hook


for name, module in body.named_modules():
    if isinstance(module, (FoldedConv, ConvThenBias, nn.MaxPool2d)):
        module.register_forward_pre_hook(pre(name), with_kwargs=True)
        module.register_forward_hook(post(name), with_kwargs=True)

x = runner.to_device(torch.rand(BATCH, 3, SIZE, SIZE)) if not CPU else torch.rand(BATCH, 3, SIZE, SIZE)
with torch.inference_mode():
    for _ in range(3):
        runner.head.features(x)
    if not CPU:
        torch.cuda.synchronize()
    activities = [ProfilerActivity.CPU] + ([] if CPU else [ProfilerActivity.CUDA])
    with profile(activities=activities) as prof:
        for _ in range(ROUNDS):
            runner.head.features(x)
        if not CPU:
            torch.cuda.synchronize()


# each module's range on the CPU side (its kernels' GPU time, children included); the GPU-side
# copies of the ranges (user annotations) are left out, so that nothing counts twice
times = collections.defaultdict(float)
for e in prof.events():
    if e.name in shapes and e.device_type == torch.autograd.DeviceType.CPU:
        times[e.name] += (e.cpu_time_total if CPU else e.device_time_total) / 1e3 / ROUNDS
by_kind = collections.defaultdict(lambda: [0.0, 0, 0.0, 0.0])
print(f"{'module':44s} {'kind':10s} {'input':>22s} {'out ch':>7s} {'ms':>7s} {'MB':>7s} {'TB/s':>6s} {'GMAC':>7s} {'TFLOPS':>7s}")
for name, s in shapes.items():
    t = times.get(name, 0.0)
    n, c, h, w = s["x"]
    _, oc, oh, ow = s["y"]
    moved = n * c * h * w + n * oc * oh * ow + (n * oc * oh * ow if s["residual"] is not None else 0)
    macs = 0
    if s["weight"] is not None:
        moved += int(torch.tensor(s["weight"]).prod())
        macs = n * oh * ow * oc * s["weight"][1] * s["weight"][2] * s["weight"][3]
    moved *= s["item"]
    k = by_kind[s["kind"]]
    k[0] += t; k[1] += 1; k[2] += moved; k[3] += macs
    rate = moved / t / 1e9 if t else 0.0
    flops = 2 * macs / t / 1e9 if t else 0.0
    print(f"{name[:44]:44s} {s['kind']:10s} {str(s['x']):>22s} {oc:7d} {t:7.3f} {moved / 1e6:7.0f} {rate:6.2f} {macs / 1e9:7.1f} {flops:7.0f}")
print("by kind:")
for name, (t, count, moved, macs) in sorted(by_kind.items(), key=lambda kv: -kv[1][0]):
    print(f"  {name:10s} {count:3d} modules {t:7.3f} ms  {moved / 1e9:6.2f} GB ({moved / t / 1e9 if t else 0:5.2f} TB/s)  {2 * macs / 1e12:6.2f} TFLOP ({2 * macs / t / 1e9 if t else 0:5.0f} TFLOPS)")
print(f"sum of the modules: {sum(times.values()):.3f} ms a batch of {BATCH}")
