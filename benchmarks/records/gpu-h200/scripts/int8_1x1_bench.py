"""For the next lease: the trunk's stride-1 1x1 convolutions (ResNeXt50 32x4d at 800x800,
batch 32; cuBLASLt/cuDNN fp16 ran them in ~6.5 ms a batch, trunk-profile.txt) as an int8
Triton GEMM with the int8 head's epilogue (triton_conv.py: per-channel scale, bias, the
residual add, ReLU, the next layer's quantization), against cuDNN's fused fp16 calls that the
fused trunk makes (torch.cudnn_convolution_relu / _add_relu, channels-last). The step an int8
trunk would take first: what a 1x1 costs in int8, with int8 or float16 output.

python3 int8_1x1_bench.py [--check-only]   (--check-only: TRITON_INTERPRET=1 on a CPU, small
shapes, the kernel against an integer reference)."""
import os
import sys

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grouped_conv_bench import bench  # noqa: E402  the records' CUDA-event timer


@triton.jit
def gemm_i8(a_desc, b_desc, scale_ptr, bias_ptr, res_ptr, y_ptr, out_inv_scale, M, N, K,
            RELU: tl.constexpr, HAS_RES: tl.constexpr, INT8_OUT: tl.constexpr,
            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    in_group = GROUP_M * grid_n
    first_m = (pid // in_group) * GROUP_M
    group_size = tl.minimum(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % in_group) % group_size
    pid_n = (pid % in_group) // group_size
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for k in range(0, K, BLOCK_K):
        a = a_desc.load([pid_m * BLOCK_M, k])
        b = b_desc.load([pid_n * BLOCK_N, k])
        acc = tl.dot(a, b.T, acc, out_dtype=tl.int32)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ok = (offs_m < M)[:, None] & (offs_n < N)[None, :]
    col_ok = offs_n < N
    scale = tl.load(scale_ptr + offs_n, mask=col_ok, other=0.0)
    y = acc.to(tl.float32) * scale[None, :] + tl.load(bias_ptr + offs_n, mask=col_ok, other=0.0)[None, :]
    where = offs_m.to(tl.int64)[:, None] * N + offs_n[None, :]
    if HAS_RES:
        y = y + tl.load(res_ptr + where, mask=ok, other=0.0).to(tl.float32)
    if RELU:
        y = tl.maximum(y, 0.0)
    if INT8_OUT:
        q = tl.minimum(tl.maximum(tl.floor(y * out_inv_scale + 0.5), -127.0), 127.0)
        tl.store(y_ptr + where, q.to(tl.int8), mask=ok)
    else:
        tl.store(y_ptr + where, y.to(tl.float16), mask=ok)


def run_gemm(a, b, scale, bias, res, out_scale, relu=True, bm=128, bn=128, bk=128, stages=3, warps=4):
    m, k = a.shape
    n = b.shape[0]
    bk = min(bk, k)
    y = torch.empty((m, n), dtype=torch.int8 if out_scale else torch.float16, device=a.device)
    grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)
    gemm_i8[grid](TensorDescriptor.from_tensor(a, [bm, bk]), TensorDescriptor.from_tensor(b, [bn, bk]),
                  scale, bias, res if res is not None else y, y, 1.0 / out_scale if out_scale else 1.0,
                  m, n, k, RELU=relu, HAS_RES=res is not None, INT8_OUT=bool(out_scale), BLOCK_M=bm,
                  BLOCK_N=bn, BLOCK_K=bk, GROUP_M=8, num_stages=stages, num_warps=warps)
    return y


# (cin, cout, side, count, residual): the trunk's stride-1 1x1s (conv1, conv3 with the
# block's residual, the FPN's laterals); the 4 stride-2 downsamples and the stem left out
SHAPES = [(64, 128, 200, 1, False), (256, 128, 200, 2, False), (128, 256, 200, 3, True),
          (256, 256, 200, 1, False), (512, 256, 100, 3, False), (256, 512, 100, 4, True),
          (512, 512, 100, 1, False), (1024, 512, 50, 5, False), (512, 1024, 50, 6, True),
          (1024, 1024, 50, 1, False), (2048, 1024, 25, 2, False), (1024, 2048, 25, 3, True),
          (512, 256, 100, 1, False), (1024, 256, 50, 1, False), (2048, 256, 25, 1, False)]
CONFIGS = [(128, 128, 128, 3, 4), (128, 128, 64, 4, 4), (128, 256, 64, 3, 8), (256, 128, 64, 3, 8),
           (128, 256, 128, 3, 8)]


def main(check_only):
    dev = "cpu" if check_only else "cuda"
    batch = 1 if check_only else 32
    shapes = [(64, 32, 5, 1, False), (128, 64, 4, 1, True)] if check_only else SHAPES
    g = torch.Generator().manual_seed(0)
    totals = {}
    if not check_only:
        torch.backends.cudnn.benchmark = True
        print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0), flush=True)
    for cin, cout, side, count, residual in shapes:
        m = batch * side * side
        aq = torch.randint(-127, 128, (m, cin), generator=g, dtype=torch.int8).to(dev)
        bq = torch.randint(-127, 128, (cout, cin), generator=g, dtype=torch.int8).to(dev)
        scale = (torch.rand(cout, generator=g) * 1e-4 + 1e-5).to(dev)
        bias = torch.randn(cout, generator=g).to(dev)
        res = torch.randn(m, cout, generator=g).half().to(dev) if residual else None
        label = f"{cin}->{cout} {side}x{side}{' +res' if residual else ''} x{count}"
        if check_only:
            acc = (aq.long() @ bq.long().T).float()
            want = acc * scale + bias + (res.float() if residual else 0)
            want = want.clamp_min(0)
            got = run_gemm(aq, bq, scale, bias, res, None, bm=16, bn=16, bk=32, stages=1, warps=1).float()
            err = (got - want.half().float()).abs().max().item()
            print(f"{label}: max |float16 out - reference| {err:.2e}", flush=True)
            assert torch.allclose(got, want.half().float(), rtol=1e-3, atol=1e-3), label
            continue
        x = torch.randn(batch, cin, side, side, device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
        w = (torch.randn(cout, cin, 1, 1, device=dev, dtype=torch.float16) * 0.05).to(memory_format=torch.channels_last)
        bh = bias.half()
        if residual:
            z = torch.randn(batch, cout, side, side, device=dev, dtype=torch.float16).to(memory_format=torch.channels_last)
            ref = lambda: torch.cudnn_convolution_add_relu(x, w, z, 1.0, bh, (1, 1), (0, 0), (1, 1), 1)  # noqa: E731
        else:
            ref = lambda: torch.cudnn_convolution_relu(x, w, bh, (1, 1), (0, 0), (1, 1), 1)  # noqa: E731
        cudnn_ms = bench(ref)
        flops = 2 * m * cin * cout
        totals["cudnn fp16"] = totals.get("cudnn fp16", 0.0) + cudnn_ms * count
        line = f"{label}: cudnn fp16 {cudnn_ms:.3f} ms ({flops / cudnn_ms / 1e9:.0f} TFLOPS)"
        best = {}
        for out in ("int8", "fp16"):
            for cfg in CONFIGS:
                bm, bn, bk, st, wp = cfg
                if bk > cin:
                    continue
                try:
                    ms = bench(lambda: run_gemm(aq, bq, scale, bias, res, 0.05 if out == "int8" else None,
                                                bm=bm, bn=bn, bk=bk, stages=st, warps=wp))
                except Exception as err_:
                    print(f"  {out} {cfg}: FAILED {str(err_)[:120]}", flush=True)
                    continue
                if out not in best or ms < best[out][0]:
                    best[out] = (ms, cfg)
            if out in best:
                ms, cfg = best[out]
                totals[f"int8 GEMM, {out} out"] = totals.get(f"int8 GEMM, {out} out", 0.0) + ms * count
                line += f"; int8->{out} {ms:.3f} ms ({flops / ms / 1e9:.0f} TOPS, {cfg})"
        print(line, flush=True)
    if check_only:
        print("check passed")
    else:
        print("sum over the trunk's stride-1 1x1s, ms a batch:", {k: round(v, 3) for k, v in totals.items()}, flush=True)


if __name__ == "__main__":
    main("--check-only" in sys.argv)
