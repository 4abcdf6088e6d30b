"""Which ops launch the fused trunk's 13 generic element-wise kernels (2.6 ms a batch of 32,
at::native::elementwise_kernel, still there after the bias passes went: lease7_b.sh)? Eager
fused fp16 trunk, channels-last, batch 32: each such kernel with the op that launched it, its
parents and input shapes; the same for the compiled trunk."""
import torch
from torch.profiler import profile, ProfilerActivity
from retinaflow.model import fused_backbone as fb
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps

torch.backends.cudnn.benchmark = True
torch.manual_seed(0)
head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval()
fb.fuse_backbone(head.backbone.body)
fb.defer_conv_biases(head.backbone.fpn)
head = head.cuda().half().to(memory_format=torch.channels_last)
for n, b in head.named_buffers():
    if b.dim() == 4 and not b.is_contiguous(memory_format=torch.channels_last):
        print("buffer not channels-last:", n, tuple(b.shape), b.stride())
x = torch.rand(32, 3, 800, 800, device="cuda", dtype=torch.float16).to(memory_format=torch.channels_last)
feats = torch.compile(head.features, dynamic=False)
with torch.inference_mode():
    for name, fn in (("eager", head.features), ("compiled", feats)):
        for _ in range(3):
            fn(x)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
            fn(x)
            torch.cuda.synchronize()
        print(f"== {name}")
        for e in prof.events():
            for k in getattr(e, "kernels", []):
                if "elementwise" in k.name or "nhwcAddPadding" in k.name:
                    chain, p = [], e
                    while p is not None:
                        chain.append(p.name)
                        p = p.cpu_parent
                    print(f"  {k.duration / 1e3:.3f} ms {k.name[:60]} <- {' <- '.join(chain[:5])} {e.input_shapes}", flush=True)
