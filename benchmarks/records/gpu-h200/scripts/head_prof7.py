"""Where the torch-int8 head's time goes now (batch 32, 800x800, ResNeXt50-FPN, 264 classes,
random weights): the trunk (compiled, fused) alone, the heads alone, and a kernel profile of the
whole head without CUDA graphs (kernel times by name; the int8 conv's launches by level, tower
and layer)."""
import collections, copy, os, sys, torch
from torch.profiler import profile, ProfilerActivity
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.model.int8_head import Int8Head, calibrate
from retinaflow.runtime.torch_runner import TorchOptions, TorchRunner

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grouped_conv_bench import bench  # noqa: E402  the records' CUDA-event timer (20 calls)

B = int(sys.argv[1]) if len(sys.argv) > 1 else 32
torch.manual_seed(0)
head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval()
x = torch.rand(B, 3, 800, 800).pin_memory()
net = Int8Head(copy.deepcopy(head), calibrate(copy.deepcopy(head).cuda(), [x[:4].cuda()]))


for graphs in (True, False):
    opts = TorchOptions(dtype="float16", channels_last=True, compile="default", cuda_graphs=graphs,
                        fuse_batch_norm=True)
    torch.compiler.reset()
    runner = TorchRunner(copy.deepcopy(net), 4, "cuda", opts, batch_size=B, keep_on_device=True)
    runner(x)
    with torch.inference_mode():
        xd = runner.to_device(x)
        print(f"whole head, graphs {graphs}: {bench(lambda: runner.run_on_device(xd), 10):.2f} ms / batch {B}", flush=True)
        if graphs:
            continue
        module = runner.head if hasattr(runner, "head") else None
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                runner.run_on_device(xd)
            torch.cuda.synchronize()
kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
by_name = collections.Counter()
for e in kernels:
    by_name[e.name[:90]] += e.device_time / 3e3
total = sum(by_name.values())
print(f"kernel time a batch (no graphs) {total:.2f} ms")
for name, ms in by_name.most_common(25):
    print(f"  {ms:7.3f} ms  {name}")
convs = [e.device_time / 1e3 for e in kernels if "conv3x3" in e.name]
per = len(convs) // 3
print(f"int8 conv launches a batch: {per}")
one = convs[:per]
labels = [(lvl, tower, i) for lvl in range(5) for tower in ("cls", "box") for i in range(5)]
for lvl in range(5):
    row = [f"{t}{i} {one[lvl * 10 + j]:.3f}" for j, (l_, t, i) in enumerate(labels[lvl * 10:(lvl + 1) * 10])]
    print(f"  P{lvl + 3}: sum {sum(one[lvl * 10:(lvl + 1) * 10]):.3f} ms | " + ", ".join(row))
