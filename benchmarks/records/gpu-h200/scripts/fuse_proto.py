"""Prototype: conv + frozen BN + ReLU (+ residual add) as one cuDNN call each in the trunk."""
import copy, sys, time, torch, torch.nn as nn, torch.nn.functional as F
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from torchvision.models.resnet import Bottleneck
torch.backends.cudnn.benchmark = True
dev, B = "cuda", 32
def bench(fn, n=10):
    for _ in range(3): fn()
    torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / n
def graphed(fn, x):
    s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3): fn(x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g): out = fn(x)
    return lambda: g.replay()
def fold(conv, bn):
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    w = (conv.weight.float() * scale.float().view(-1, 1, 1, 1)).to(conv.weight.dtype).contiguous(memory_format=torch.channels_last)
    b = (bn.bias.float() - bn.running_mean.float() * scale.float()).to(conv.weight.dtype)
    return w, b
class FB(nn.Module):
    def __init__(self, blk):
        super().__init__()
        self.w1, self.b1 = fold(blk.conv1, blk.bn1); self.w2, self.b2 = fold(blk.conv2, blk.bn2); self.w3, self.b3 = fold(blk.conv3, blk.bn3)
        c2 = blk.conv2; self.s, self.p, self.d, self.g = c2.stride, c2.padding, c2.dilation, c2.groups
        self.down = None
        if blk.downsample is not None:
            self.wd, self.bd = fold(blk.downsample[0], blk.downsample[1]); self.sd = blk.downsample[0].stride; self.down = True
    def forward(self, x):
        idn = F.conv2d(x, self.wd, self.bd, self.sd) if self.down else x
        o = torch.cudnn_convolution_relu(x, self.w1, self.b1, (1, 1), (0, 0), (1, 1), 1)
        o = torch.cudnn_convolution_relu(o, self.w2, self.b2, self.s, self.p, self.d, self.g)
        return torch.cudnn_convolution_add_relu(o, self.w3, idn, 1.0, self.b3, (1, 1), (0, 0), (1, 1), 1)
class Stem(nn.Module):
    def __init__(self, body):
        super().__init__(); self.w, self.b = fold(body.conv1, body.bn1); self.pool = body.maxpool
    def forward(self, x):
        return self.pool(torch.cudnn_convolution_relu(x, self.w, self.b, (2, 2), (3, 3), (1, 1), 1))
torch.manual_seed(0)
head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval().to(dev).half().to(memory_format=torch.channels_last)
# non-trivial BN statistics so that the fold is tested
for m in head.backbone.body.modules():
    if hasattr(m, "running_var"):
        m.running_var.uniform_(0.5, 2); m.running_mean.uniform_(-0.2, 0.2); m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.2, 0.2)
fused = copy.deepcopy(head)
body = fused.backbone.body
with torch.no_grad():
    for name in ("layer1", "layer2", "layer3", "layer4"):
        layer = getattr(body, name)
        for i, blk in enumerate(layer): layer[i] = FB(blk)
    stem = Stem(body)
class FusedBody(nn.Module):
    def __init__(self, body, stem):
        super().__init__(); self.stem = stem; self.body = body
    def forward(self, x):
        x = self.stem(x); out = {}
        for name, key in self.body.return_layers.items():
            pass
        names = ["layer1", "layer2", "layer3", "layer4"]
        for n in names:
            x = getattr(self.body, n)(x)
            if n in self.body.return_layers: out[self.body.return_layers[n]] = x
        return out
fused.backbone.body = FusedBody(body, stem)
x = torch.rand(B, 3, 800, 800, device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
with torch.inference_mode():
    ref = head.features(x); got = fused.features(x)
    for r, g in zip(ref, got):
        print("level rel err", ((r.float() - g.float()).norm() / r.float().norm()).item(), flush=True)
    print("eager orig", round(bench(lambda: head.features(x), 5), 2), "fused", round(bench(lambda: fused.features(x), 5), 2), flush=True)
    print("eager+graph orig", round(bench(graphed(head.features, x)), 2), "fused", round(bench(graphed(fused.features, x)), 2), flush=True)
    c1 = torch.compile(head.features, dynamic=False)
    print("compiled+graph orig", round(bench(graphed(c1, x)), 2), flush=True)
    try:
        c2 = torch.compile(fused.features, dynamic=False)
        print("compiled+graph fused", round(bench(graphed(c2, x)), 2), flush=True)
    except Exception as err:
        print("compile fused failed:", str(err)[:400], flush=True)
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fused.features(x); torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=100), flush=True)
    if len(sys.argv) > 1:
        import torch._inductor.config as ic
        ic.conv_1x1_as_mm = True
        torch._dynamo.reset(); t = time.time()
        c3 = torch.compile(head.features, dynamic=False, mode="max-autotune-no-cudagraphs")
        c3(x); print("max-autotune compile s", round(time.time() - t), flush=True)
        print("max-autotune conv_1x1_as_mm +graph orig", round(bench(graphed(c3, x)), 2), flush=True)
