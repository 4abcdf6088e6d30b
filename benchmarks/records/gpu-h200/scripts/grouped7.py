"""Seventh lease: the trunk's 32-group 3x3 convs. The lease7_next.sh profile found 2.6 ms of
at::native element-wise kernels in the fused trunk (batch 32), which the fourth lease left
untraced, beside cuDNN's grouped kernel (sm80_xmma 64x64, 2.4 ms).

A. Per shape: cuDNN conv alone; torch.cudnn_convolution_relu (what the fused trunk calls);
   conv2d then bias+ReLU compiled (one inductor pass); Triton v1 (grouped_conv_bench.py's
   kernel, CB 16 blocks, channel block fastest or not) and v2 (a program takes CT channels,
   wide loads, a batched 3D tl.dot over 16-wide diagonal blocks).
B. The trunk (fused, fp16, channels-last, compiled, batch 32) with each grouped-conv path.
C. The fused trunk's ops by input shape (eager profile): which convs fall back.
python3 grouped7.py [--check-only]  (--check-only: TRITON_INTERPRET=1 on a CPU, small shapes)
"""
import copy, os, sys, time
import torch, torch.nn.functional as F
import triton, triton.language as tl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grouped_conv_bench import GROUPS, block_diagonal, conv_triton, bench  # noqa: E402


@triton.jit
def gconv_v2(x_ptr, w_ptr, b_ptr, y_ptr, P, H, W, C, HO, WO,
             STRIDE: tl.constexpr, CT: tl.constexpr, SUB: tl.constexpr, BLOCK_P: tl.constexpr,
             RELU: tl.constexpr, CFAST: tl.constexpr):
    NB: tl.constexpr = CT // SUB
    if CFAST:
        nct = C // CT
        pid = tl.program_id(0)
        pid_p = pid // nct
        ct = pid % nct
    else:
        pid_p = tl.program_id(0)
        ct = tl.program_id(1)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    n = p // (HO * WO)
    rem = p % (HO * WO)
    oy = rem // WO
    ox = rem % WO
    c = ct * CT + tl.arange(0, CT)
    bi = tl.arange(0, NB)
    si = tl.arange(0, SUB)
    acc = tl.zeros((NB, BLOCK_P, SUB), dtype=tl.float32)
    for tap in tl.static_range(9):
        iy = oy * STRIDE + (tap // 3 - 1)
        ix = ox * STRIDE + (tap % 3 - 1)
        ok = (p < P) & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
        a = tl.load(x_ptr + ((n * H + iy) * W + ix)[:, None] * C + c[None, :], mask=ok[:, None], other=0.0)
        a3 = tl.permute(tl.reshape(a, (BLOCK_P, NB, SUB)), (1, 0, 2))
        # w: [C/SUB, 9, SUB, SUB] (block, tap, in, out)
        w = tl.load(w_ptr + (((ct * NB + bi[:, None, None]) * 9 + tap) * SUB + si[None, :, None]) * SUB
                    + si[None, None, :])
        acc = tl.dot(a3, w, acc)
    out = tl.reshape(tl.permute(acc, (1, 0, 2)), (BLOCK_P, CT))
    out = out + tl.load(b_ptr + c)[None, :]
    if RELU:
        out = tl.maximum(out, 0.0)
    tl.store(y_ptr + p[:, None] * C + c[None, :], out.to(tl.float16), mask=(p < P)[:, None])


def conv_v2(x_nhwc, wb16, bias, stride, ct, block_p, warps=4, cfast=True, relu=True):
    n, h, w, c = x_nhwc.shape
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    y = torch.empty((n, ho, wo, c), dtype=torch.float16, device=x_nhwc.device)
    p = n * ho * wo
    grid = (triton.cdiv(p, block_p) * (c // ct),) if cfast else (triton.cdiv(p, block_p), c // ct)
    gconv_v2[grid](x_nhwc, wb16, bias, y, p, h, w, c, ho, wo, STRIDE=stride, CT=ct, SUB=16, BLOCK_P=block_p,
                   RELU=relu, CFAST=cfast, num_warps=warps)
    return y


SHAPES = [(128, 1, 200, 3), (256, 2, 200, 1), (256, 1, 100, 3), (512, 2, 100, 1), (512, 1, 50, 5),
          (1024, 2, 50, 1), (1024, 1, 25, 2)]


def part_a(dev, check_only):
    batch = 2 if check_only else 32
    shapes = [(128, 1, 6, 1), (256, 2, 7, 1), (1024, 1, 3, 1)] if check_only else SHAPES
    g = torch.Generator().manual_seed(0)
    best = {}
    for c, stride, size, count in shapes:
        x = torch.randn(batch, c, size, size, generator=g).relu().to(dev)
        weight = (torch.randn(c, c // GROUPS, 3, 3, generator=g) * (2 / (9 * c / GROUPS)) ** 0.5).to(dev)
        bias = (torch.randn(c, generator=g) * 0.1).to(dev)
        ref = F.relu(F.conv2d(x.double(), weight.double(), bias.double(), stride, 1, groups=GROUPS)).float()
        xh = x.half().to(memory_format=torch.channels_last)
        wh = weight.half().to(memory_format=torch.channels_last)
        x_nhwc = xh.permute(0, 2, 3, 1)
        wb = block_diagonal(weight.half(), max(16, c // GROUPS))
        wb16 = block_diagonal(weight.half(), 16) if c // GROUPS <= 16 else None
        b32 = bias.float().contiguous()
        label = f"C{c} s{stride} {size}x{size} x{count}"
        err = lambda y: ((y.permute(0, 3, 1, 2).float() - ref).norm() / ref.norm()).item()  # noqa: E731
        if check_only:
            msg = f"{label}: v1 {err(conv_triton(x_nhwc, wb, b32, stride, block_p=32)):.1e}"
            if wb16 is not None:
                for ct in (16, 32, 64):
                    if c % ct == 0:
                        e = err(conv_v2(x_nhwc, wb16, b32, stride, ct, 16))
                        msg += f", v2 CT{ct} {e:.1e}"
                        assert e < 2e-3, (label, ct, e)
            print(msg, flush=True)
            continue
        bh = bias.half()
        times = {
            "cudnn conv alone": bench(lambda: F.conv2d(xh, wh, None, stride, 1, 1, GROUPS)),
            "cudnn_convolution_relu": bench(lambda: torch.cudnn_convolution_relu(xh, wh, bh, (stride,) * 2, (1, 1), (1, 1), GROUPS)),
        }
        comp = torch.compile(lambda t: F.relu(F.conv2d(t, wh, None, stride, 1, 1, GROUPS) + bh.view(1, -1, 1, 1)), dynamic=False)
        times["conv + compiled bias/ReLU"] = bench(lambda: comp(xh))
        for bp, wp in ((128, 4), (256, 4), (128, 8)):
            times[f"v1 {bp}/{wp}"] = bench(lambda: conv_triton(x_nhwc, wb, b32, stride, block_p=bp, warps=wp))
        if wb16 is not None:
            for ct in (64, 128):
                for bp in (32, 64, 128):
                    for cf in (True, False):
                        try:
                            times[f"v2 CT{ct} P{bp} cfast{int(cf)}"] = bench(lambda: conv_v2(x_nhwc, wb16, b32, stride, ct, bp, 4, cf))
                        except Exception as e_:
                            print(f"  v2 CT{ct} P{bp}: FAILED {str(e_)[:120]}", flush=True)
            e2 = err(conv_v2(x_nhwc, wb16, b32, stride, 64, 64))
        else:
            e2 = float("nan")
        print(f"{label}: v1 rel. L2 {err(conv_triton(x_nhwc, wb, b32, stride)):.1e}, v2 {e2:.1e}", flush=True)
        for k, v in sorted(times.items(), key=lambda kv: kv[1]):
            print(f"  {v:.3f} ms  {k}", flush=True)
        best[(c, stride)] = min((v, k) for k, v in times.items() if k.startswith("v"))
    return best


def part_bc(best):
    from retinaflow.model import fused_backbone as fb
    from retinaflow.model.architectures import build_retinanet
    from retinaflow.model.head import HeadMaps

    torch.manual_seed(0)
    head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval()
    fb.fuse_backbone(head.backbone.body)
    head = head.cuda().half().to(memory_format=torch.channels_last)
    x = torch.rand(32, 3, 800, 800, device="cuda", dtype=torch.float16).to(memory_format=torch.channels_last)
    grouped = [m for m in head.modules() if isinstance(m, fb.FoldedConv) and m.groups > 1]
    print(f"{len(grouped)} grouped convs in the trunk", flush=True)
    for m in grouped:
        cg = m.weight.shape[1]
        m.wb = block_diagonal(m.weight, max(16, cg)).contiguous()
        m.wb16 = block_diagonal(m.weight, 16).contiguous() if cg <= 16 else None
        m.b32 = m.bias.float().contiguous()
    original = fb.FoldedConv.forward

    def pointwise(self, x, residual=None):
        if self.groups == 1:
            return original(self, x, residual)
        return F.relu(F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
                      + self.bias.view(1, -1, 1, 1))

    def triton_best(self, x, residual=None):
        if self.groups == 1:
            return original(self, x, residual)
        c, s = self.weight.shape[0], self.stride[0]
        ms, key = best[(c, s)]
        xn = x.permute(0, 2, 3, 1).contiguous()
        if key.startswith("v1"):
            bp, wp = map(int, key.split()[1].split("/"))
            y = conv_triton(xn, self.wb, self.b32, s, block_p=bp, warps=wp)
        else:
            parts = key.split()
            y = conv_v2(xn, self.wb16, self.b32, s, int(parts[1][2:]), int(parts[2][1:]), 4, parts[3] == "cfast1")
        return y.permute(0, 3, 1, 2)

    results = {}
    ref = None
    with torch.inference_mode():
        for name, fwd in (("cudnn fused (now)", original), ("conv + pointwise", pointwise), ("triton best", triton_best)):
            fb.FoldedConv.forward = fwd
            torch.compiler.reset()
            feats = torch.compile(head.features, dynamic=False)
            try:
                out = feats(x)
                ms = bench(lambda: feats(x), 10)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    gout = feats(x)
                ms_graph = bench(lambda: g.replay(), 10)
                if ref is None:
                    ref = [o.float() for o in out]
                err = max(((o.float() - r).norm() / r.norm()).item() for o, r in zip(out, ref))
                results[name] = ms_graph
                print(f"trunk {name}: compiled {ms:.2f} ms, + CUDA graph {ms_graph:.2f} ms, max rel. L2 vs now {err:.1e}", flush=True)
                del g, gout
            except Exception as e_:
                import traceback; traceback.print_exc()
                print(f"trunk {name}: FAILED {str(e_)[:200]}", flush=True)
        fb.FoldedConv.forward = original
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
            head.features(x)
            torch.cuda.synchronize()
        print(prof.key_averages(group_by_input_shape=True).table(sort_by="cuda_time_total", row_limit=40, max_name_column_width=40,
                                                                 max_shapes_column_width=90), flush=True)
    return results


if __name__ == "__main__":
    check = "--check-only" in sys.argv
    dev = "cpu" if check else "cuda"
    if not check:
        torch.backends.cudnn.benchmark = True
        print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0), flush=True)
    best = part_a(dev, check)
    if check:
        print("check passed")
    else:
        print("best Triton per shape:", best, flush=True)
        part_bc(best)
