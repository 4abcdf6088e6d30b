"""On CUDA: the fused backbone (cuDNN conv-bias-ReLU / conv-bias-add-ReLU) against the unfused
one, fp32 without TF32 (the ops' arithmetic) and fp16 (both against fp32), both archs."""
import copy, torch, torch.nn as nn
from torchvision.ops.misc import FrozenBatchNorm2d
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.fused_backbone import fuse_backbone
from retinaflow.model.head import HeadMaps
torch.backends.cudnn.allow_tf32 = False; torch.backends.cuda.matmul.allow_tf32 = False
print(torch.__version__, torch.cuda.get_device_name(0), "cudnn", torch.backends.cudnn.version(), flush=True)
for arch, size in (("resnext50_32x4d_fpn", 800), ("demo", 320)):
    torch.manual_seed(0)
    head = HeadMaps(build_retinanet(arch, 264, size)).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)):
                n = m.running_var.numel()
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5); m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
                m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5); m.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    fused = copy.deepcopy(head); count = fuse_backbone(fused.backbone.body)
    x = torch.rand(4, 3, size, size, device="cuda")
    with torch.inference_mode():
        ref = [f.float() for f in head.cuda().features(x)]
        f32 = fused.cuda().features(x)
        print(arch, "fused modules", count, flush=True)
        print("  fp32 fused vs unfused, rel L2 per level:", [f"{((a - b).norm() / a.norm()).item():.1e}" for a, b in zip(ref, f32)], flush=True)
        for name, net in (("unfused", head), ("fused", fused)):
            h = copy.deepcopy(net).half().to(memory_format=torch.channels_last)
            out = h.features(x.half().to(memory_format=torch.channels_last))
            print(f"  fp16 {name} vs fp32 unfused:", [f"{((a - b.float()).norm() / a.norm()).item():.1e}" for a, b in zip(ref, out)], flush=True)
