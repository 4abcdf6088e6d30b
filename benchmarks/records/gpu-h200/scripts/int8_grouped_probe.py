"""Ready for the thirteenth lease, beside int8_1x1_persistent.py: the other half of an int8
trunk, its stride-1 grouped 3x3s (ResNeXt50 32x4d at 800x800, batch 32), in int8 on
triton_conv's padded flat layout, against cuDNN's fp16 calls as the fused trunk makes them
(stages 1-2 with their groups merged to 32 channels, stages 3-4 as trained: 32 groups of 16
and 32 channels; benchmarks/gpu-h200.md, eleventh lease).

The library kernel's tiles with one change: a tile's output columns are one *merged group* of
MG channels (BLOCK_N = MG), and its reduction runs over that group's own MG input channels
(9 taps x MG), the weight block-diagonal inside the merged group (the original groups'
weights on its diagonal, zeros elsewhere: triton_conv's int8 sums stay exact). MG 32, 64 or
128 trade the tensor cores' narrow tiles (N = 32) against multiplications by zeros. By
arithmetic the int8 version is about even with cuDNN's fp16 here (the 9 taps re-read the
input from L2; stage 1's merged fp16 call took ~0.2 ms); this measures it. The epilogue and
the tile order are the library's (triton_conv._epilogue, _tile).
python3 int8_grouped_probe.py [--check]  (--check: small shapes in Triton's interpreter on
the CPU, int8 output against an exact reference, bit for bit)."""
import os
import sys

import torch
import torch.nn.functional as F

from retinaflow import triton_conv as tc  # first: the interpreter on a machine without CUDA
from retinaflow.model.fused_backbone import merged_group_weight

import triton  # noqa: E402  isort: skip
import triton.language as tl  # noqa: E402  isort: skip
from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: E402  isort: skip

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
CHECK = "--check" in sys.argv


@triton.jit
def grouped_kernel(x_desc, w_desc, scale_ptr, bias_ptr, y_ptr, out_inv_scale, P, HP, WP, MG, OC,
                   MARGIN, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   GROUP_M: tl.constexpr):
    grid_m = (P + BLOCK_M - 1) // BLOCK_M
    grid_n = (OC + BLOCK_N - 1) // BLOCK_N
    pid_m, pid_n = tc._tile(tl.program_id(0), grid_m, grid_n, GROUP_M)
    row0, col0 = pid_m * BLOCK_M, pid_n * BLOCK_N
    acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.int32)
    for k in range(0, 9 * MG, BLOCK_K):
        tap = k // MG
        shift = (tap // 3 - 1) * WP + tap % 3 - 1
        a = x_desc.load([MARGIN + row0 + shift, col0 + k % MG])  # the merged group's inputs
        b = w_desc.load([col0, k])
        acc = tl.dot(a, b.T, acc, out_dtype=tl.int32)
    tc._epilogue(acc, row0, col0, scale_ptr, bias_ptr, y_ptr, y_ptr, out_inv_scale, P, HP, WP, OC,
                 MARGIN, True, True, False, BLOCK_M, BLOCK_N)


def merged_weight(weight, groups, mg):
    """[C, C/groups, 3, 3] -> the kernel's [C, 9 * mg] int8 layout of merged groups of mg
    channels (fused_backbone.merged_group_weight: block-diagonal), with the per-channel scales."""
    return tc.quantize_weight(merged_group_weight(weight, groups, weight.shape[0] // mg))


def run(xq, shape, wq, scale, bias, out_scale, mg, bm=128, stages=3, warps=4):
    oc = wq.shape[0]
    y = shape.empty(oc, xq.device)
    bk = min(mg, 128)
    grid = (triton.cdiv(shape.pixels, bm) * triton.cdiv(oc, mg),)
    grouped_kernel[grid](TensorDescriptor.from_tensor(xq, [bm, bk]), TensorDescriptor.from_tensor(wq, [mg, bk]),
                         scale, bias, y, 1.0 / out_scale, shape.pixels, shape.height + 2, shape.width + 2,
                         mg, oc, shape.margin, BLOCK_M=bm, BLOCK_N=mg, BLOCK_K=bk, GROUP_M=8,
                         num_stages=stages, num_warps=warps)
    return y


def case(n, side, channels, groups, mg, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, side, side, channels, generator=g).relu()
    weight = torch.randn(channels, channels // groups, 3, 3, generator=g) * 0.05
    bias = torch.randn(channels, generator=g)
    x_scale = float(x.abs().max()) / tc.INT8_MAX
    shape = tc.PaddedShape(n, side, side)
    xq = shape.pack(x.to(device), x_scale)
    wq, w_scale = merged_weight(weight.to(device), groups, mg)
    return shape, xq, wq, (x_scale * w_scale).float(), bias.to(device), weight


def exact(shape, xq, wq, scale, bias, mg, out_scale):
    """The grouped conv of the quantized input and merged weight (float64 sums: exact), then
    the kernel's float32 epilogue and rounding."""
    x = shape.interior(xq).permute(0, 3, 1, 2).double()
    channels = x.shape[1]
    w = wq.double().reshape(channels, 3, 3, mg).permute(0, 3, 1, 2)
    acc = F.conv2d(x, w, padding=1, groups=channels // mg).round()
    y = (acc.permute(0, 2, 3, 1).float() * scale + bias).clamp_min(0.0)
    return tc.quantize(y, out_scale)


def check():
    for n, side, channels, groups, mg in [(2, 5, 64, 8, 32), (1, 4, 128, 32, 64), (3, 3, 64, 2, 32)]:
        shape, xq, wq, scale, bias, _ = case(n, side, channels, groups, mg, "cpu")
        out_scale = 0.05
        want = exact(shape, xq, wq, scale, bias, mg, out_scale)
        got = run(xq, shape, wq, scale, bias, out_scale, mg, bm=32, stages=1, warps=1)
        assert torch.equal(shape.interior(got), want), (n, side, channels, groups, mg)
        # the frame and the margins zero: the next layer's padding
        assert int(got.abs().sum()) == int(shape.interior(got).abs().sum())
        print(f"check n={n} {side}x{side} {channels} ch, {groups} groups as {channels // mg} of {mg}: bytes equal")
    print("check passed")


def main():
    from grouped_conv_bench import bench  # the records' CUDA-event timer (20 calls)

    torch.backends.cudnn.benchmark = True
    print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0), flush=True)
    batch = 32
    # (channels, side, trained groups, cuDNN's groups as the runner calls it, stride-1 count)
    shapes = [(128, 200, 32, 4, 3), (256, 100, 32, 8, 3), (512, 50, 32, 32, 5), (1024, 25, 32, 32, 2)]
    totals = {}
    for channels, side, groups, cudnn_groups, count in shapes:
        x = torch.randn(batch, channels, side, side, device="cuda", dtype=torch.float16).relu()
        x = x.to(memory_format=torch.channels_last)
        w = (torch.randn(channels, channels // cudnn_groups, 3, 3, device="cuda", dtype=torch.float16) * 0.05)
        w = w.to(memory_format=torch.channels_last)
        b = torch.randn(channels, device="cuda", dtype=torch.float16)
        ms = {"cudnn fp16": bench(lambda: torch.cudnn_convolution_relu(x, w, b, (1, 1), (1, 1), (1, 1), cudnn_groups))}
        floor16 = 2 * 2 * batch * side * side * channels / 4.3e9
        floor8 = 2 * batch * (side + 2) ** 2 * channels / 4.3e9
        line = f"{channels} ch {side}x{side} ({groups} groups; cuDNN {cudnn_groups}) x{count}: cudnn fp16 {ms['cudnn fp16']:.3f} ms (floor {floor16:.3f})"
        for mg in (32, 64, 128):
            if mg < channels // groups or mg > channels:
                continue
            shape, xq, wq, scale, bias, _ = case(batch, side, channels, groups, mg, "cuda")
            for bm, stages, warps in [(128, 3, 4), (256, 3, 8), (128, 4, 4)]:
                key = f"int8 MG{mg} {bm}/{stages}/{warps}"
                try:
                    ms[key] = bench(lambda: run(xq, shape, wq, scale, bias, 0.05, mg, bm, stages, warps))
                except Exception as err:  # a config the compiler or the GPU refuses
                    print(f"  {key}: FAILED {type(err).__name__} {str(err)[:120]}", flush=True)
                    continue
                print(f"  {key}: {ms[key]:.3f} ms", flush=True)
        best = min((v, k) for k, v in ms.items() if k.startswith("int8"))
        line += f"; int8 best {best[0]:.3f} ({best[1]}; floor {floor8:.3f})"
        totals["cudnn fp16"] = totals.get("cudnn fp16", 0.0) + ms["cudnn fp16"] * count
        totals["int8 best"] = totals.get("int8 best", 0.0) + best[0] * count
        print(line, flush=True)
    print("sum over the trunk's stride-1 grouped 3x3s, ms a batch:", {k: round(v, 3) for k, v in totals.items()}, flush=True)


if __name__ == "__main__":
    check() if CHECK else main()
