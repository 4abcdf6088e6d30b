"""Eleventh lease: the trunk's 32-group 3x3s with their groups merged. cuDNN runs ResNeXt50's
grouped 3x3s at 19-79 TFLOPS (grouped-conv-bench.txt; ~2.4 ms of the head's ~21.7 a batch),
its dense convolutions at several hundred. The same convolution with g < 32 groups and a
block-diagonal weight (the 32/g original groups of a merged group on its diagonal, exact zeros
elsewhere) computes the same sums with 32/g times the multiplications: does cuDNN run one of
them faster? Batch 32, float16, channels-last, cudnn.benchmark on, the conv with its bias (the
trunk's fuses the ReLU too); the outputs compared with the 32-group one's in float32. Usage: python grouped_merge_bench.py
[--fused]: cuDNN's fused conv + bias + ReLU (`torch.cudnn_convolution_relu`), what the compiled
trunk calls (the first call timed F.conv2d with its bias, ~2x slower on the 200x200 stage)."""
import sys
import time

import torch
import torch.nn.functional as F

torch.backends.cudnn.benchmark = True
print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0), flush=True)
B, GROUPS = 32, 32
FUSED = "--fused" in sys.argv
print("fused conv + bias + ReLU" if FUSED else "F.conv2d with its bias", flush=True)
# (channels, stride, input size, how many in the trunk): ResNeXt50 32x4d at 800x800
SHAPES = [(128, 1, 200, 3), (256, 2, 200, 1), (256, 1, 100, 3), (512, 2, 100, 1), (512, 1, 50, 5),
          (1024, 2, 50, 1), (1024, 1, 25, 2)]


def merged(weight, groups):
    """[C, C/32, 3, 3] -> [C, C/groups, 3, 3]: each output channel's 32-group weights placed at
    its input channels' offsets within its merged group, zeros elsewhere."""
    c, per = weight.shape[0], weight.shape[1]
    width = c // groups
    out = weight.new_zeros(c, width, 3, 3)
    for o in range(0, c, per):  # o's original group: input channels [o, o + per)
        out[o : o + per, o % width : o % width + per] = weight[o : o + per]
    return out


def bench(fn, n=30):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n


t0 = time.time()
total = {}
for c, stride, size, count in SHAPES:
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, c, size, size, device="cuda", generator=g).half().to(memory_format=torch.channels_last)
    w32 = (torch.randn(c, c // GROUPS, 3, 3, device="cuda", generator=g) * 0.1).half()
    bias = torch.randn(c, device="cuda", generator=g).half()
    ref = F.conv2d(x.float(), w32.float(), bias.float(), stride, 1, 1, GROUPS)
    flops = 2 * B * (size // stride) ** 2 * c * (c // GROUPS) * 9
    line = []
    for groups in (32, 16, 8, 4, 2, 1):
        w = merged(w32, groups).to(memory_format=torch.channels_last) if groups != 32 else w32.to(memory_format=torch.channels_last)
        if FUSED:
            call = lambda w=w, groups=groups: torch.cudnn_convolution_relu(x, w, bias, (stride, stride), (1, 1), (1, 1), groups)  # noqa: E731
            want = ref.relu()
        else:
            call = lambda w=w, groups=groups: F.conv2d(x, w, bias, stride, 1, 1, groups)  # noqa: E731
            want = ref
        got = call()
        err = float((got.float() - want).norm() / want.norm())
        ms = bench(call)
        total[groups] = total.get(groups, 0.0) + ms * count
        line.append(f"g{groups} {ms:.3f} ms ({flops / ms / 1e9:.0f} TFLOPS of the grouped work) err {err:.1e}")
    print(f"C{c} s{stride} {size}x{size} x{count}: " + "; ".join(line), flush=True)
print("summed over the trunk's grouped convs, ms a batch:", {g: round(t, 3) for g, t in total.items()}, flush=True)
print(f"done in {time.time() - t0:.0f} s", flush=True)
