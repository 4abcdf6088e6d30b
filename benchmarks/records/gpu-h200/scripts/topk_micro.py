import torch, triton, triton.language as tl
from retinaflow import radix_topk as rt
from retinaflow.triton_setup import sum_combine
N, L = 32, 100 * 100 * 2376
x = (torch.randn(N, L, device="cuda") * 0.05 - 1).half()
bits = x.view(torch.int16)
def ev(fn, n=10):
    fn(); s, e = torch.cuda.Event(True), torch.cuda.Event(True); torch.cuda.synchronize()
    s.record()
    for _ in range(n): fn()
    e.record(); torch.cuda.synchronize(); return s.elapsed_time(e) / n

@triton.jit
def _bw(bits_ptr, out_ptr, L, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0); start = tl.program_id(1) * CHUNK
    acc = tl.full((BLOCK,), 0, tl.int32)
    for offset in range(0, CHUNK, BLOCK):
        index = start + offset + tl.arange(0, BLOCK)
        u = tl.load(bits_ptr + row.to(tl.int64) * L + index, mask=index < L, other=0)
        acc += u.to(tl.int32)
    tl.store(out_ptr + row * tl.num_programs(1) + tl.program_id(1), tl.reduce(acc, 0, sum_combine))

@triton.jit
def _hist_only(bits_ptr, counts_ptr, L, CHUNK: tl.constexpr, BLOCK: tl.constexpr, BINS: tl.constexpr):
    row = tl.program_id(0); start = tl.program_id(1) * CHUNK
    counts = tl.full((BINS,), 0, dtype=tl.int32)
    for offset in range(0, CHUNK, BLOCK):
        index = start + offset + tl.arange(0, BLOCK)
        u = tl.load(bits_ptr + row.to(tl.int64) * L + index, mask=index < L, other=0)
        u = u.to(tl.int32) & 0xFFFF
        counts += tl.histogram((u >> 8) & (BINS - 1), BINS)
    bins = tl.arange(0, BINS)
    tl.atomic_add(counts_ptr + row * BINS + bins, counts)

print(f"torch.topk P3: {ev(lambda: x.topk(1000, dim=1)):.2f} ms; bytes {x.numel()*2/1e9:.2f} GB")
for chunk, block, warps in [(65536, 2048, 4), (65536, 2048, 8), (65536, 4096, 8), (16384, 2048, 4), (131072, 4096, 8)]:
    chunks = -(-L // chunk)
    out = torch.empty(N, chunks, dtype=torch.int32, device="cuda")
    t_bw = ev(lambda: _bw[(N, chunks)](bits, out, L, CHUNK=chunk, BLOCK=block, num_warps=warps))
    cnt = torch.zeros(N, 256, dtype=torch.int32, device="cuda")
    t_h256 = ev(lambda: _hist_only[(N, chunks)](bits, cnt, L, CHUNK=chunk, BLOCK=block, BINS=256, num_warps=warps))
    cnt2 = torch.zeros(N, 512, dtype=torch.int32, device="cuda")
    t_h512 = ev(lambda: _hist_only[(N, chunks)](bits, cnt2, L, CHUNK=chunk, BLOCK=block, BINS=512, num_warps=warps))
    high = torch.zeros(N, 256, dtype=torch.int32, device="cuda")
    t_a = ev(lambda: rt._high_byte_counts[(N, chunks)](bits, high, L, 0x7C00, CHUNK=chunk, BLOCK=block, num_warps=warps))
    hb = torch.full((N,), 0x3B, dtype=torch.int32, device="cuda")
    lc = torch.empty(N, chunks, 256, dtype=torch.int32, device="cuda"); ab = torch.empty(N, chunks, dtype=torch.int32, device="cuda")
    t_b = ev(lambda: rt._low_byte_counts[(N, chunks)](bits, hb, lc, ab, L, 0x7C00, CHUNK=chunk, BLOCK=block, num_warps=warps))
    kth = torch.full((N,), 0x3BF0, dtype=torch.int32, device="cuda"); ties = torch.zeros(N, chunks, dtype=torch.int32, device="cuda")
    off = torch.zeros(N, chunks, dtype=torch.int32, device="cuda")
    ob = torch.empty(N, 1000, dtype=torch.int16, device="cuda"); oi = torch.empty(N, 1000, dtype=torch.int64, device="cuda")
    kth2 = torch.full((N,), 0xFFFF, dtype=torch.int32, device="cuda")  # nothing chosen
    t_c = ev(lambda: rt._write_selected[(N, chunks)](bits, kth2, ties, off, ob, oi, L, 1000, 0x7C00, CHUNK=chunk, BLOCK=block, num_warps=warps))
    print(f"chunk {chunk} block {block} warps {warps}: bw {t_bw:.2f}  hist256 {t_h256:.2f}  hist512 {t_h512:.2f}  passA {t_a:.2f}  passB {t_b:.2f}  passC {t_c:.2f} ms", flush=True)
print(f"top_k_rows P3 whole: {ev(lambda: rt.top_k_rows(x, 1000)):.2f} ms")
