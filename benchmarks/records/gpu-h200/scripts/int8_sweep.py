"""Sixth lease: the int8 head kernel's tiles (triton_conv._conv3x3_kernel) swept on the H200,
with the reduction step BLOCK_K 128 (128-byte int8 rows: TMA's full swizzle; the library used
64) and Triton's warp specialisation (tl.range(..., warp_specialize=True)), which the library
kernel does not use. The kernel below is the library's with those two knobs; every config's
output is compared byte for byte with the library kernel's (int32 sums are exact)."""
import sys, time, itertools, torch, triton, triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor
from retinaflow import triton_conv as tc

print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name(0), flush=True)


@triton.jit
def kernel(x_desc, w_desc, scale_ptr, bias_ptr, y_ptr, out_inv_scale, P, HP, WP, C, OC, MARGIN,
           RELU: tl.constexpr, INT8_OUT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
           BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, WS: tl.constexpr):
    pid = tl.program_id(0)
    grid_m = (P + BLOCK_M - 1) // BLOCK_M
    grid_n = (OC + BLOCK_N - 1) // BLOCK_N
    in_group = GROUP_M * grid_n
    first_m = (pid // in_group) * GROUP_M
    group_size = tl.minimum(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % in_group) % group_size
    pid_n = (pid % in_group) // group_size
    row0 = pid_m * BLOCK_M
    acc = tl.full((BLOCK_M, BLOCK_N), 0, dtype=tl.int32)
    for k in tl.range(0, 9 * C, BLOCK_K, warp_specialize=WS):
        tap = k // C
        shift = (tap // 3 - 1) * WP + tap % 3 - 1
        a = x_desc.load([MARGIN + row0 + shift, k % C])
        b = w_desc.load([pid_n * BLOCK_N, k])
        acc = tl.dot(a, b.T, acc, out_dtype=tl.int32)
    offs_m = row0 + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = offs_n < OC
    scale = tl.load(scale_ptr + offs_n, mask=col_ok, other=0.0)
    bias = tl.load(bias_ptr + offs_n, mask=col_ok, other=0.0)
    y = acc.to(tl.float32) * scale[None, :] + bias[None, :]
    if RELU:
        y = tl.maximum(y, 0.0)
    row = (offs_m // WP) % HP
    col = offs_m % WP
    interior = (row > 0) & (row < HP - 1) & (col > 0) & (col < WP - 1)
    out = y_ptr + (MARGIN + offs_m)[:, None] * OC + offs_n[None, :]
    ok = (offs_m < P)[:, None] & col_ok[None, :]
    if INT8_OUT:
        q = tl.floor(y * out_inv_scale + 0.5)
        q = tl.minimum(tl.maximum(q, -127.0), 127.0)
        q = tl.where(interior[:, None], q, 0.0)
        tl.store(out, q.to(tl.int8), mask=ok)
    else:
        tl.store(out, y.to(tl.float16), mask=ok)


def run(x, shape, w, scale, bias, relu, out_scale, bm, bn, bk, stages, warps, ws):
    oc, channels = w.shape[0], x.shape[1]
    y = torch.empty((shape.rows, oc), dtype=torch.float16, device=x.device) if out_scale is None else shape.empty(oc, x.device)
    grid = (triton.cdiv(shape.pixels, bm) * triton.cdiv(oc, bn),)
    kernel[grid](TensorDescriptor.from_tensor(x, [bm, bk]), TensorDescriptor.from_tensor(w, [bn, bk]), scale, bias, y,
                 1.0 / out_scale if out_scale else 1.0, shape.pixels, shape.height + 2, shape.width + 2, channels, oc,
                 shape.margin, RELU=relu, INT8_OUT=out_scale is not None, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                 GROUP_M=8, WS=ws, num_stages=stages, num_warps=warps)
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


B = 32
budget_s = float(sys.argv[1]) if len(sys.argv) > 1 else 300
# warp specialisation: only with "ws" (lease 6's first call: its first compile hung past the
# call's 280 s timeout)
specialise = (False, True) if "ws" in sys.argv[2:] else (False,)
t0 = time.time()
tiles = [(128, 128, 4), (128, 128, 8), (128, 256, 8), (256, 128, 8)]
best = {}
for H, OC, share in [(100, 2376, 0.55), (100, 256, 0.45)]:  # P3: the class conv, a tower conv
    t0 = time.time()
    C = 256
    shape = tc.PaddedShape(B, H, H)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = shape.pack(torch.randn(B, H, H, C, device="cuda", generator=g).relu(), 0.03)
    wq, wsc = tc.quantize_weight(torch.randn(OC, C, 3, 3, device="cuda", generator=g) * 0.02)
    scale = (0.03 * wsc).float()
    bias = torch.randn(OC, device="cuda", generator=g)
    out_scale = None if OC > 256 else 0.05
    ops = 2 * B * H * H * OC * C * 9
    ref = tc.conv3x3(x, shape, wq, scale, bias, relu=True, out_scale=out_scale)
    lib_ms = bench(lambda: tc.conv3x3(x, shape, wq, scale, bias, relu=True, out_scale=out_scale))
    print(f"P H{H} OC{OC}: library {tc.BLOCKS} BK {tc.block_k(C)}: {lib_ms:.3f} ms {ops / lib_ms / 1e9:.0f} TOPS", flush=True)
    rows = []
    for (bm, bn, warps), bk, stages, ws in itertools.product(tiles, (128, 64), (3, 4, 5), specialise):
        if stages * (bm + bn) * bk > 200 * 1024 or time.time() - t0 > budget_s * share:
            continue
        try:
            y = run(x, shape, wq, scale, bias, True, out_scale, bm, bn, bk, stages, warps, ws)
            got = shape.interior(y) if out_scale is None else y
            want = ref if out_scale is None else ref
            same = torch.equal(got.contiguous() if out_scale is None else got, want)
            ms = bench(lambda: run(x, shape, wq, scale, bias, True, out_scale, bm, bn, bk, stages, warps, ws))
            rows.append((ms, (bm, bn, bk, stages, warps, ws)))
            print(f"  {bm}x{bn} BK{bk} st{stages} w{warps} ws={ws}: {ms:.3f} ms {ops / ms / 1e9:.0f} TOPS same={same}", flush=True)
        except Exception as err:
            print(f"  {bm}x{bn} BK{bk} st{stages} w{warps} ws={ws}: FAILED {type(err).__name__} {str(err)[:160]}", flush=True)
    rows.sort()
    print(f"best H{H} OC{OC}:", rows[:3], f"(library {lib_ms:.3f})", flush=True)
print("sweep done", flush=True)
