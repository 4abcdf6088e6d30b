"""Ran in the twelfth lease (lease12-next.txt): the trunk's 7x7 stride-2 stem on 3 channels (0.66 ms a batch of
32 at 800x800 on the H200, seventh lease: cuDNN pads 3 input channels to 8, so most of its
multiplications are by padding) as a space-to-depth: the input padded by 3, each 2x2 block of
pixels made 4 channels (F.pixel_unshuffle: 12 channels at 403x403), then a 4x4 stride-1 conv
with the 7x7 weights spread over it (w'[o, 4c + 2a + b, s, t] = w[o, c, 2s + a, 2t + b], zero
where 2s + a or 2t + b is 7): the same products, in a shape the tensor cores take whole. Batch
32, float16, channels-last, cuDNN's fused conv-bias-ReLU as the fused trunk calls it; the
outputs compared with the 7x7's. In the trunk inductor would fuse the pad and the unshuffle into
the input normalisation's pass; timed here apart. Usage: python stem_s2d_bench.py [--check]
(--check: the equivalence in float64 on the CPU, small)."""
import sys

import torch
import torch.nn.functional as F

CHECK = "--check" in sys.argv


def spread_weight(w: torch.Tensor, channels: int = 12) -> torch.Tensor:
    """[out, 3, 7, 7] -> [out, channels, 4, 4] (channels >= 12: the rest zero)."""
    out = w.new_zeros(w.shape[0], channels, 4, 4)
    for c in range(w.shape[1]):
        for a in range(2):
            for b in range(2):
                taps = w[:, c, a::2, b::2]  # u = 2s + a for s = 0 .. (6 - a) // 2
                out[:, 4 * c + 2 * a + b, : taps.shape[1], : taps.shape[2]] = taps
    return out


def space_to_depth(x: torch.Tensor, channels: int = 12) -> torch.Tensor:
    z = F.pixel_unshuffle(F.pad(x, (3, 3, 3, 3)), 2)
    if channels > z.shape[1]:
        z = F.pad(z, (0, 0, 0, 0, 0, channels - z.shape[1]))
    return z


if CHECK:
    x = torch.randn(2, 3, 20, 20, dtype=torch.float64)
    w = torch.randn(64, 3, 7, 7, dtype=torch.float64)
    want = F.conv2d(x, w, None, 2, 3)
    for ch in (12, 16):
        got = F.conv2d(space_to_depth(x, ch), spread_weight(w, ch))
        print(f"check {ch} channels: shape {tuple(got.shape)} == {tuple(want.shape)}, max |diff| {float((got - want).abs().max()):.1e}")
    sys.exit(0)

torch.backends.cudnn.benchmark = True
print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name(0), flush=True)
B = 32
g = torch.Generator(device="cuda").manual_seed(0)
x = torch.randn(B, 3, 800, 800, device="cuda", generator=g).half().to(memory_format=torch.channels_last)
w = (torch.randn(64, 3, 7, 7, device="cuda", generator=g) * 0.1).half()
bias = torch.randn(64, device="cuda", generator=g).half()


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


w7 = w.to(memory_format=torch.channels_last)
ref = torch.cudnn_convolution_relu(x, w7, bias, (2, 2), (3, 3), (1, 1), 1)
print(f"7x7 stride 2, 3 channels: {bench(lambda: torch.cudnn_convolution_relu(x, w7, bias, (2, 2), (3, 3), (1, 1), 1)):.3f} ms", flush=True)
for ch in (12, 16):
    z = space_to_depth(x, ch).contiguous(memory_format=torch.channels_last)
    w4 = spread_weight(w.float(), ch).half().to(memory_format=torch.channels_last)
    got = torch.cudnn_convolution_relu(z, w4, bias, (1, 1), (0, 0), (1, 1), 1)
    err = float((got.float() - ref.float()).norm() / ref.float().norm())
    conv_ms = bench(lambda: torch.cudnn_convolution_relu(z, w4, bias, (1, 1), (0, 0), (1, 1), 1))
    s2d_ms = bench(lambda: space_to_depth(x, ch).contiguous(memory_format=torch.channels_last))
    print(f"space-to-depth, {ch} channels: 4x4 conv {conv_ms:.3f} ms + the transform alone {s2d_ms:.3f} ms; rel. L2 to the 7x7 {err:.1e}", flush=True)
