"""Ran in the twelfth lease (lease12-b.txt): the library's int8 kernel (triton_conv.conv3x3) after its
refactor into jit helpers (_tile, _accumulate, _epilogue: inlined by Triton, the same code
expected) against the eleventh lease's figures on another machine of the kind (P3's class
conv 3.071-3.075 ms, its tower conv 0.349-0.351: int8_persistent.py's "library" rows), and its
new persistent form (persistent=True: int8 outputs) on the towers of every level, bytes
compared. Usage: python int8_library_check.py"""
import torch

from retinaflow import triton_conv as tc


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


print("torch", torch.__version__, torch.cuda.get_device_name(0), flush=True)
B, C = 32, 256
for H, OC in [(100, 2376), (100, 256), (50, 256), (25, 256), (13, 256), (7, 256)]:
    shape = tc.PaddedShape(B, H, H)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = shape.pack(torch.randn(B, H, H, C, device="cuda", generator=g).relu(), 0.03)
    wq, wsc = tc.quantize_weight(torch.randn(OC, C, 3, 3, device="cuda", generator=g) * 0.02)
    scale, bias = (0.03 * wsc).float(), torch.randn(OC, device="cuda", generator=g)
    out_scale = None if OC > 256 else 0.05
    ops = 2 * B * H * H * OC * C * 9
    ms = bench(lambda: tc.conv3x3(x, shape, wq, scale, bias, True, out_scale, persistent=False))
    line = f"P {H}x{H} OC{OC}: library {ms:.3f} ms ({ops / ms / 1e9:.0f} TOPS)"
    if out_scale is not None:
        want = tc.conv3x3(x, shape, wq, scale, bias, True, out_scale, persistent=False)
        got = tc.conv3x3(x, shape, wq, scale, bias, True, out_scale, persistent=True)
        pms = bench(lambda: tc.conv3x3(x, shape, wq, scale, bias, True, out_scale, persistent=True))
        line += f"; persistent {pms:.3f} ms, bytes equal {torch.equal(got, want)}"
    print(line, flush=True)
