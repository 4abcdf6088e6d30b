"""For the next lease: the trunk's 32-group 3x3 convolutions (ResNeXt50 32x4d at 800x800,
batch 32, fp16 channels-last), cuDNN against a Triton kernel, each with the folded batch
norm's bias and the ReLU. cuDNN ran these at 24-165 TFLOPS (trunk-profile.txt: ~3.5 ms of the
trunk's ~14); they are memory-bound (stage 1 reads and writes 327 MB a conv: ~0.16 ms at
~4 TB/s against cuDNN's 0.49).

The kernel: a program takes BLOCK_P output pixels and one channel block of CB = max(16, group
width) channels (whole groups); the weight is that block's [9, CB, CB] block-diagonal matrix
(zeros between groups: the tensor cores' smallest tile is 16 wide, so a 4-wide group costs 4x
its arithmetic, which is cheap here); nine tl.dot's, one a tap, over masked NHWC loads.
Checked against F.conv2d in float32 (relative L2 and max error, printed), then timed.
python3 grouped_conv_bench.py [--check-only] (--check-only: small shapes, runs in Triton's
interpreter on a CPU: TRITON_INTERPRET=1)."""
import sys, time
import torch, torch.nn.functional as F
import triton, triton.language as tl

GROUPS = 32


@triton.jit
def grouped_conv3x3(x_ptr, w_ptr, b_ptr, y_ptr, P, H, W, C, HO, WO,
                    STRIDE: tl.constexpr, CB: tl.constexpr, BLOCK_P: tl.constexpr, RELU: tl.constexpr):
    pid_p = tl.program_id(0)
    cb = tl.program_id(1)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    n = p // (HO * WO)
    rem = p % (HO * WO)
    oy = rem // WO
    ox = rem % WO
    ci = tl.arange(0, CB)
    c = cb * CB + ci
    acc = tl.full((BLOCK_P, CB), 0.0, dtype=tl.float32)
    for tap in tl.static_range(9):
        iy = oy * STRIDE + (tap // 3 - 1)
        ix = ox * STRIDE + (tap % 3 - 1)
        ok = (p < P) & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
        a = tl.load(x_ptr + ((n * H + iy) * W + ix)[:, None] * C + c[None, :], mask=ok[:, None], other=0.0)
        w = tl.load(w_ptr + ((cb * 9 + tap) * CB + ci[:, None]) * CB + ci[None, :])
        acc = tl.dot(a, w, acc)
    acc = acc + tl.load(b_ptr + c)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    tl.store(y_ptr + p[:, None] * C + c[None, :], acc.to(tl.float16), mask=(p < P)[:, None])


def block_diagonal(weight, cb):
    """[C, C/groups, 3, 3] -> [C/cb, 9, cb (in), cb (out)], zeros between the block's groups."""
    c, cg = weight.shape[0], weight.shape[1]
    out = torch.zeros(c // cb, 9, cb, cb, dtype=weight.dtype, device=weight.device)
    taps = weight.permute(0, 2, 3, 1).reshape(c, 9, cg)  # [out, tap, in of its group]
    for o in range(c):
        block, within = divmod(o, cb)
        first_in = (within // cg) * cg
        out[block, :, first_in:first_in + cg, within] = taps[o]
    return out


def conv_triton(x_nhwc, wb, bias, stride, relu=True, block_p=128, warps=4):
    n, h, w, c = x_nhwc.shape
    ho, wo = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
    y = torch.empty((n, ho, wo, c), dtype=torch.float16, device=x_nhwc.device)
    cb = wb.shape[2]
    p = n * ho * wo
    grid = (triton.cdiv(p, block_p), c // cb)
    grouped_conv3x3[grid](x_nhwc, wb, bias, y, p, h, w, c, ho, wo, STRIDE=stride, CB=cb, BLOCK_P=block_p,
                          RELU=relu, num_warps=warps)
    return y


def bench(fn, n=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n


def main(check_only):
    dev = "cuda" if torch.cuda.is_available() and not check_only else "cpu"
    # (channels, stride, input size, count in the trunk)
    shapes = [(128, 1, 200, 3), (256, 2, 200, 1), (256, 1, 100, 3), (512, 2, 100, 1), (512, 1, 50, 5),
              (1024, 2, 50, 1), (1024, 1, 25, 2)]
    batch = 32
    if check_only:
        shapes, batch = [(128, 1, 6, 1), (256, 2, 7, 1), (1024, 1, 3, 1)], 2
    if dev == "cuda":
        torch.backends.cudnn.benchmark = True
        print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0), flush=True)
    g = torch.Generator(device="cpu").manual_seed(0)
    totals = {"cudnn": 0.0}
    for c, stride, size, count in shapes:
        cb = max(16, c // GROUPS)
        x = torch.randn(batch, c, size, size, generator=g).relu().to(dev)
        weight = (torch.randn(c, c // GROUPS, 3, 3, generator=g) * (2 / (9 * c / GROUPS)) ** 0.5).to(dev)
        bias = (torch.randn(c, generator=g) * 0.1).to(dev)
        ref = F.relu(F.conv2d(x.double(), weight.double(), bias.double(), stride, 1, groups=GROUPS)).float()
        xh = x.half().to(memory_format=torch.channels_last)
        wh = weight.half().to(memory_format=torch.channels_last)
        x_nhwc = xh.permute(0, 2, 3, 1)  # a view of the channels-last memory: NHWC contiguous
        wb = block_diagonal(weight.half(), cb)
        bias32 = bias.float().contiguous()
        flops = 2 * batch * c * (c // GROUPS) * 9 * ((size + 2 - 3) // stride + 1) ** 2
        label = f"C{c} s{stride} {size}x{size} x{count}"
        y = conv_triton(x_nhwc, wb, bias32, stride, block_p=32 if check_only else 128).permute(0, 3, 1, 2).float()
        err = ((y - ref).norm() / ref.norm()).item()
        if dev == "cpu":
            cudnn_like = F.relu(F.conv2d(xh.float(), wh.float(), bias.half().float(), stride, 1, groups=GROUPS))
            err_ref = ((cudnn_like - ref).norm() / ref.norm()).item()
            print(f"{label}: triton rel. L2 {err:.2e} (fp16 inputs in float32: {err_ref:.2e})", flush=True)
            assert err < 3 * err_ref + 1e-3, label
            continue
        cudnn_ms = bench(lambda: F.relu(F.conv2d(xh, wh, bias.half(), stride, 1, groups=GROUPS)))
        y_cudnn = F.relu(F.conv2d(xh, wh, bias.half(), stride, 1, groups=GROUPS)).float()
        err_cudnn = ((y_cudnn - ref).norm() / ref.norm()).item()
        totals["cudnn"] += cudnn_ms * count
        print(f"{label}: cudnn {cudnn_ms:.3f} ms ({flops / cudnn_ms / 1e9:.0f} TFLOPS) rel. L2 {err_cudnn:.1e}; "
              f"triton rel. L2 {err:.1e}", flush=True)
        for block_p in (64, 128, 256):
            for warps in (4, 8):
                try:
                    ms = bench(lambda: conv_triton(x_nhwc, wb, bias32, stride, block_p=block_p, warps=warps))
                    key = (block_p, warps)
                    totals[key] = totals.get(key, 0.0) + ms * count
                    print(f"  triton BLOCK_P {block_p} warps {warps}: {ms:.3f} ms", flush=True)
                except Exception as err_:
                    print(f"  triton BLOCK_P {block_p} warps {warps}: FAILED {str(err_)[:150]}", flush=True)
    if dev == "cuda":
        print("sum over the trunk's grouped convs, ms:", {str(k): round(v, 3) for k, v in totals.items()}, flush=True)
    else:
        print("check passed", flush=True)


if __name__ == "__main__":
    main("--check-only" in sys.argv)
