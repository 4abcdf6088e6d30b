"""The k largest values of each row of a [N, L] tensor, best first, equal values by position:
exactly the first k of `rows.sort(dim=1, descending=True, stable=True)`, without the sort.

Per-level top-k over a batch's class logits is the device post-processing's largest step
(P3 at 800x800: 23.8 M logits an image, 1.5 GB a batch of 32 in float16). torch.topk took
7.5 ms a batch for the five levels on an H200 (benchmarks/gpu-h200.md), several times what
reading the maps costs, and chooses among equal values in its own way. For 16-bit floats on
a GPU, `top_k_rows` runs a radix select in three Triton passes over the rows, at memory
speed, and returns the same choice on every run and device:

1. every value's 16-bit *order key* (the float's bits, reordered so that integers compare
   as the floats do), a histogram of the keys' high bytes per row: the high byte of the
   k-th largest key;
2. per chunk of a row, a histogram of the low bytes of the keys with that high byte, and the
   count above it: the k-th largest key exactly, how many of its ties are taken (the first
   ones), and where each chunk's selected values go;
3. each chunk writes its values above the k-th key and its share of the ties, in position
   order; one sort of the k values per row then orders them (stably: ties by position).

Small tensor ops between the passes run on the device: no host sync. Anywhere else (float32
maps, the CPU) the same result comes from torch ops (`_top_k_rows_torch`). On the CPU the
Triton passes run in Triton's interpreter (tests: `backend="triton"`). Values are taken as
finite; -0.0 and +0.0 count as equal, as the sort compares them.
"""

from __future__ import annotations

import torch

from .triton_setup import sum_combine  # first: sets up the interpreter on a machine without CUDA

import triton  # noqa: E402  isort: skip
import triton.language as tl  # noqa: E402  isort: skip

CHUNK = 1 << 16  # a program's share of a row: 363 programs an image at P3 (800x800)
BLOCK = 2048  # values a program reads at once
# the 16-bit floats' bit patterns above which a value is NaN (|bits|): float16, bfloat16
_SIXTEEN_BIT = {torch.float16: 0x7C00, torch.bfloat16: 0x7F80}

# the kernels: triton.language's builtins, triton_setup.sum_combine for sums (triton_setup: why)


@triton.jit
def _high_byte_counts(bits_ptr, counts_ptr, L, NAN_ABOVE, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    """counts[row, b] += the chunk's values whose order key has high byte b."""
    row = tl.program_id(0)
    start = tl.program_id(1) * CHUNK
    counts = tl.full((512,), 0, dtype=tl.int32)
    for offset in range(0, CHUNK, BLOCK):
        index = start + offset + tl.arange(0, BLOCK)
        inside = index < L
        u = tl.load(bits_ptr + row.to(tl.int64) * L + index, mask=inside, other=0)
        u = u.to(tl.int32) & 0xFFFF
        u = tl.where(u == 0x8000, 0, u)  # -0.0 is +0.0
        key = tl.where((u & 0x8000) != 0, 0xFFFF - u, u | 0x8000)
        key = tl.where((u & 0x7FFF) > NAN_ABOVE, 0xFFFF, key)
        # values outside the row count in bin 256 + (never read): no mask argument needed
        counts += tl.histogram(tl.where(inside, key >> 8, 256), 512)
    bins = tl.arange(0, 512)
    tl.atomic_add(counts_ptr + row * 256 + bins, counts, mask=bins < 256)


@triton.jit
def _low_byte_counts(
    bits_ptr,
    high_ptr,  # [N] the k-th key's high byte
    low_counts_ptr,  # [N, chunks, 256] the chunk's keys with that high byte, by low byte
    above_ptr,  # [N, chunks] the chunk's keys with a higher high byte
    L,
    NAN_ABOVE,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    chunk = tl.program_id(1)
    chunks = tl.num_programs(1)
    start = chunk * CHUNK
    high = tl.load(high_ptr + row)
    counts = tl.full((512,), 0, dtype=tl.int32)
    above = tl.full((BLOCK,), 0, dtype=tl.int32)
    for offset in range(0, CHUNK, BLOCK):
        index = start + offset + tl.arange(0, BLOCK)
        inside = index < L
        u = tl.load(bits_ptr + row.to(tl.int64) * L + index, mask=inside, other=0)
        u = u.to(tl.int32) & 0xFFFF
        u = tl.where(u == 0x8000, 0, u)
        key = tl.where((u & 0x8000) != 0, 0xFFFF - u, u | 0x8000)
        key = tl.where((u & 0x7FFF) > NAN_ABOVE, 0xFFFF, key)
        counts += tl.histogram(tl.where(inside & ((key >> 8) == high), key & 0xFF, 256), 512)
        above += (inside & ((key >> 8) > high)).to(tl.int32)
    bins = tl.arange(0, 512)
    tl.store(low_counts_ptr + (row * chunks + chunk) * 256 + bins, counts, mask=bins < 256)
    tl.store(above_ptr + row * chunks + chunk, tl.reduce(above, 0, sum_combine))


@triton.jit
def _write_selected(
    bits_ptr,
    kth_ptr,  # [N] the k-th largest key
    ties_ptr,  # [N, chunks] how many of the chunk's keys equal to it are taken (its first)
    offset_ptr,  # [N, chunks] where the chunk's selected values start in the row's k
    out_bits_ptr,  # [N, k] the selected values' bits, in position order
    out_index_ptr,  # [N, k] their positions (int64)
    L,
    K,
    NAN_ABOVE,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    chunk = tl.program_id(1)
    chunks = tl.num_programs(1)
    start = chunk * CHUNK
    kth = tl.load(kth_ptr + row)
    ties = tl.load(ties_ptr + row * chunks + chunk)
    written = tl.load(offset_ptr + row * chunks + chunk)
    tied = ties * 0  # ties met so far in this chunk
    for offset in range(0, CHUNK, BLOCK):
        index = start + offset + tl.arange(0, BLOCK)
        inside = index < L
        raw = tl.load(bits_ptr + row.to(tl.int64) * L + index, mask=inside, other=0)
        u = raw.to(tl.int32) & 0xFFFF
        u = tl.where(u == 0x8000, 0, u)
        key = tl.where((u & 0x8000) != 0, 0xFFFF - u, u | 0x8000)
        key = tl.where((u & 0x7FFF) > NAN_ABOVE, 0xFFFF, key)
        equal = inside & (key == kth)
        tie_rank = tied + tl.associative_scan(equal.to(tl.int32), 0, sum_combine) - 1
        chosen = inside & ((key > kth) | (equal & (tie_rank < ties)))
        slot = written + tl.associative_scan(chosen.to(tl.int32), 0, sum_combine) - 1
        target = row.to(tl.int64) * K + slot
        tl.store(out_bits_ptr + target, raw, mask=chosen)
        tl.store(out_index_ptr + target, index.to(tl.int64), mask=chosen)
        tied += tl.reduce(equal.to(tl.int32), 0, sum_combine)
        written += tl.reduce(chosen.to(tl.int32), 0, sum_combine)


def top_k_rows(
    rows: torch.Tensor, k: int, backend: str = "auto", chunk: int = CHUNK, block: int = BLOCK
) -> tuple[torch.Tensor, torch.Tensor]:
    """(values [N, k'], positions [N, k'] int64) with k' = min(k, L): each row's k largest
    values, best first, equal values by position (the first ones taken), as
    `rows.sort(dim=1, descending=True, stable=True)` would give them. rows: [N, L], each row
    contiguous. backend "auto": the Triton passes for float16/bfloat16 on CUDA, torch ops
    otherwise; "triton" or "torch" forces one (the interpreter runs Triton's on the CPU)."""
    n, length = rows.shape
    k = max(0, min(k, length))
    if backend not in ("auto", "triton", "torch"):
        raise ValueError(f"top_k_rows: backend {backend!r} is not one of auto, triton, torch")
    sixteen = rows.dtype in _SIXTEEN_BIT
    if backend == "triton" and not sixteen:
        raise ValueError(f"top_k_rows: the Triton passes take float16/bfloat16, not {rows.dtype}")
    if n == 0 or k == 0:
        return rows.new_empty(n, k), torch.empty(n, k, dtype=torch.int64, device=rows.device)
    if backend == "triton" or (backend == "auto" and sixteen and rows.is_cuda):
        values, positions = _select_triton(rows, k, chunk, block)
    else:
        values, positions = _select_torch(rows, k)
    order = values.sort(dim=1, descending=True, stable=True).indices
    return values.gather(1, order), positions.gather(1, order)


def _select_torch(rows: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same selection with torch ops, in position order: everything above the k-th
    largest value and the first of its ties."""
    kth = rows.topk(k, dim=1).values[:, -1:]
    above = rows > kth
    equal = rows == kth
    ties = k - above.sum(1, keepdim=True)
    chosen = above | (equal & (equal.cumsum(1) <= ties))
    positions = chosen.nonzero()[:, 1].view(len(rows), k)
    return rows.gather(1, positions), positions


def _select_triton(rows: torch.Tensor, k: int, chunk: int, block: int):
    """The three Triton passes (module docstring), in position order."""
    n, length = rows.shape
    if rows.stride(1) != 1 or rows.stride(0) != length:
        rows = rows.contiguous()
    bits = rows.view(torch.int16)
    nan_above = _SIXTEEN_BIT[rows.dtype]
    chunks = -(-length // chunk)
    grid = (n, chunks)
    device = rows.device

    high_counts = torch.zeros(n, 256, dtype=torch.int32, device=device)
    _high_byte_counts[grid](bits, high_counts, length, nan_above, CHUNK=chunk, BLOCK=block)
    high, higher = _kth_digit(high_counts, torch.full((n,), k, device=device))

    low_counts = torch.empty(n, chunks, 256, dtype=torch.int32, device=device)
    above_high = torch.empty(n, chunks, dtype=torch.int32, device=device)
    _low_byte_counts[grid](
        bits, high.to(torch.int32), low_counts, above_high, length, nan_above,
        CHUNK=chunk, BLOCK=block,
    )  # fmt: skip
    need = k - higher  # of the keys with the k-th's high byte
    low, lower = _kth_digit(low_counts.sum(1), need)
    ties = need - lower  # of the k-th key's ties, how many are taken: at least one

    # per chunk: its keys above the k-th key, its ties, then the ties it takes (first ones)
    from_top = low_counts.flip(2).cumsum(2).flip(2)  # [N, chunks, b]: low byte >= b
    from_top = torch.cat([from_top, from_top.new_zeros(n, chunks, 1)], 2)
    above = above_high + from_top.gather(2, (low + 1)[:, None, None].expand(n, chunks, 1))[..., 0]
    equal = low_counts.gather(2, low[:, None, None].expand(n, chunks, 1))[..., 0]
    before = equal.cumsum(1) - equal
    taken = (ties[:, None] - before).clamp(min=0).minimum(equal)
    count = above + taken
    offset = count.cumsum(1) - count

    out_bits = torch.empty(n, k, dtype=torch.int16, device=device)
    positions = torch.empty(n, k, dtype=torch.int64, device=device)
    _write_selected[grid](
        bits, (high * 256 + low).to(torch.int32), taken.to(torch.int32),
        offset.to(torch.int32), out_bits, positions, length, k, nan_above,
        CHUNK=chunk, BLOCK=block,
    )  # fmt: skip
    return out_bits.view(rows.dtype), positions


def _kth_digit(counts: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """counts [N, 256] of a digit's values per row, k [N] >= 1 -> (the digit of each row's
    k-th largest, how many values have a larger digit), all int64."""
    from_top = counts.long().flip(1).cumsum(1).flip(1)  # [N, b]: digit >= b
    digit = (from_top >= k[:, None]).sum(1) - 1
    from_top = torch.cat([from_top, from_top.new_zeros(len(counts), 1)], 1)
    return digit, from_top.gather(1, (digit + 1)[:, None])[:, 0]
