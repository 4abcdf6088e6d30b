"""The k largest values of each row of a [N, L] tensor, best first, equal values by position:
exactly the first k of `rows.sort(dim=1, descending=True, stable=True)`, without the sort.

Per-level top-k over a batch's class logits is the device post-processing's largest step
(P3 at 800x800: 23.8 M logits an image, 1.5 GB a batch of 32 in float16). torch.topk took
5.4 ms a batch for P3 and 7.5 ms for the five levels on an H200 (benchmarks/gpu-h200.md),
15 times what reading P3 once costs (0.35 ms), and chooses among equal values in its own
way. For 16-bit floats on a GPU, `top_k_levels` runs a radix select in Triton that reads
the rows in full once and then only the parts that can hold the k best:

0. every value's 16-bit *order key* (the float's bits, reordered so that integers compare
   as the floats do), and the largest key of each sub-chunk of SUB values. The k-th largest
   of these maxima is a floor: k values reach it, so the k-th largest value does too, and a
   sub-chunk whose maximum is below the floor holds nothing of the k best (P3 has 23,203
   sub-chunks a row, of which about k pass);
1. a histogram of the high bytes of the keys at or above the floor: the k-th largest key's
   high byte;
2. a histogram of the low bytes of the counted keys with that high byte: the k-th largest
   key;
3. every key at or above it (the k best and all ties of the k-th) with its position, into
   a buffer of WIDTH_FACTOR * k a row, at slots taken from an atomic counter.

Each candidate is then one int64, key * 2^32 + (2^32 - 1 - position), all distinct, so that
one torch.topk of the buffer gives the k best by value and then by position: the same result
on every run and device, whatever order the atomics wrote in. Histograms (Triton's
tl.histogram) cost 7 times a plain read on the H200, hence the floor first. Small tensor ops
between the passes run on the device; one host sync for all the levels reads the counters,
and a row whose ties overflow its buffer (a level of many equal values) takes the torch ops
(`_select_torch`), as float32 rows and the CPU do. On the CPU the Triton passes run in
Triton's interpreter (tests: `backend="triton"`). Values are taken as finite (a NaN ranks
above everything); -0.0 and +0.0 count as equal, as the sort compares them.
"""

from __future__ import annotations

import torch

from .triton_setup import max_combine, sum_combine  # first: the interpreter without CUDA

import triton  # noqa: E402  isort: skip
import triton.language as tl  # noqa: E402  isort: skip

SUB = 1024  # values of a sub-chunk at most: its maximum decides whether later passes read it
GROUP = 16  # sub-chunks a program takes in passes 1-3 (8 in pass 0)
MAXIMA_OF_FLOATS = True  # pass 0 on float16: the floats' maximum (else the keys')
WIDTH_FACTOR = 8  # a row's candidate buffer: 8 * k keys (the k best and their ties)
# the 16-bit floats' bit patterns above which a value is NaN (|bits|): float16, bfloat16
_SIXTEEN_BIT = {torch.float16: 0x7C00, torch.bfloat16: 0x7F80}

# the kernels: triton.language's builtins, triton_setup's combine functions (triton_setup: why)


@triton.jit
def _order_key(raw, NAN_ABOVE):
    """16-bit float bits -> int32 keys in [0, 65535] that compare as the floats: -0.0 as
    +0.0, every NaN the largest."""
    u = raw.to(tl.int32) & 0xFFFF
    u = tl.where(u == 0x8000, 0, u)
    key = tl.where((u & 0x8000) != 0, 0xFFFF - u, u | 0x8000)
    return tl.where((u & 0x7FFF) > NAN_ABOVE, 0xFFFF, key)


@triton.jit
def _sub_chunk_keys(bits_ptr, row, chunk, L, NAN_ABOVE, SUB: tl.constexpr):
    index = chunk * SUB + tl.arange(0, SUB)
    inside = index < L
    raw = tl.load(bits_ptr + row.to(tl.int64) * L + index, mask=inside, other=0)
    return index, inside, _order_key(raw, NAN_ABOVE)


@triton.jit
def _sub_chunk_maxima(
    rows_ptr,
    maxima_ptr,
    L,
    CHUNKS,
    NAN_ABOVE,
    FLOATS: tl.constexpr,
    SUB: tl.constexpr,
    GROUP: tl.constexpr,
):
    """Pass 0: maxima[row, c] = the key of sub-chunk c's largest value (GROUP sub-chunks a
    program, read as one contiguous block). FLOATS: the maximum of the float16 values, then
    its key; else (rows_ptr: the bits) the maximum of the keys."""
    row = tl.program_id(0)
    first = tl.program_id(1) * GROUP
    index = first * SUB + tl.arange(0, GROUP * SUB)
    inside = index < L
    if FLOATS:
        values = tl.load(rows_ptr + row.to(tl.int64) * L + index, mask=inside, other=-float("inf"))
        best = tl.reduce(tl.reshape(values, (GROUP, SUB)), 1, max_combine)
        key = _order_key(best.to(tl.int16, bitcast=True), NAN_ABOVE)
    else:
        raw = tl.load(rows_ptr + row.to(tl.int64) * L + index, mask=inside, other=0)
        keys = tl.where(inside, _order_key(raw, NAN_ABOVE), -1)
        key = tl.reduce(tl.reshape(keys, (GROUP, SUB)), 1, max_combine)
    chunk = first + tl.arange(0, GROUP)
    tl.store(maxima_ptr + row * CHUNKS + chunk, key, mask=chunk < CHUNKS)


@triton.jit
def _digit_counts(
    bits_ptr,
    maxima_ptr,  # [N, CHUNKS] pass 0's
    floor_ptr,  # [N] keys below are not counted, sub-chunks whose maximum is below not read
    high_ptr,  # [N] the high byte to match (LOW); unused otherwise
    counts_ptr,  # [N, 256] += the counted keys by high byte, or (LOW) by low byte
    L,
    CHUNKS,
    NAN_ABOVE,
    LOW: tl.constexpr,
    SUB: tl.constexpr,
    GROUP: tl.constexpr,
):
    """Pass 1 (the high bytes of the keys >= floor) and pass 2 (LOW: the low bytes of those
    of them whose high byte is high[row])."""
    row = tl.program_id(0)
    floor = tl.load(floor_ptr + row)
    high = tl.load(high_ptr + row)
    counts = tl.full((512,), 0, dtype=tl.int32)
    for c in range(GROUP):
        chunk = tl.program_id(1) * GROUP + c
        best = tl.load(maxima_ptr + row * CHUNKS + chunk, mask=chunk < CHUNKS, other=-1)
        if best >= floor:
            _, inside, key = _sub_chunk_keys(bits_ptr, row, chunk, L, NAN_ABOVE, SUB)
            counted = inside & (key >= floor)
            if LOW:
                digit = tl.where(counted & ((key >> 8) == high), key & 0xFF, 256)
            else:
                digit = tl.where(counted, key >> 8, 256)
            # keys not counted go to bin 256 (never read): no mask argument needed
            counts += tl.histogram(digit, 512)
    bins = tl.arange(0, 512)
    tl.atomic_add(counts_ptr + row * 256 + bins, counts, mask=bins < 256)


@triton.jit
def _write_candidates(
    bits_ptr,
    maxima_ptr,
    least_ptr,  # [N] the least key written: the floor, or the k-th largest key
    count_ptr,  # [N] int32: candidates met so far (atomic)
    keys_ptr,  # [N, WIDTH] int32 out: the candidates' keys (-1 where none)
    index_ptr,  # [N, WIDTH] int32 out: their positions
    WIDTH,
    L,
    CHUNKS,
    NAN_ABOVE,
    SUB: tl.constexpr,
    GROUP: tl.constexpr,
):
    """Every key >= least[row] and its position, at slots taken from the row's counter (a
    sub-chunk's together); slots past WIDTH are counted, not written."""
    row = tl.program_id(0)
    least = tl.load(least_ptr + row)
    for c in range(GROUP):
        chunk = tl.program_id(1) * GROUP + c
        best = tl.load(maxima_ptr + row * CHUNKS + chunk, mask=chunk < CHUNKS, other=-1)
        if best >= least:
            index, inside, key = _sub_chunk_keys(bits_ptr, row, chunk, L, NAN_ABOVE, SUB)
            chosen = (inside & (key >= least)).to(tl.int32)
            base = tl.atomic_add(count_ptr + row, tl.reduce(chosen, 0, sum_combine))
            slot = base + tl.associative_scan(chosen, 0, sum_combine) - 1
            keep = (chosen != 0) & (slot < WIDTH)
            target = row.to(tl.int64) * WIDTH + slot
            tl.store(keys_ptr + target, key, mask=keep)
            tl.store(index_ptr + target, index, mask=keep)


def top_k_rows(rows: torch.Tensor, k: int, backend: str = "auto", **sizes):
    """(values [N, k'], positions [N, k'] int64) with k' = min(k, L): each row's k largest
    values, best first, equal values by position (the first ones taken), as
    `rows.sort(dim=1, descending=True, stable=True)` would give them. rows: [N, L].
    backend "auto": the Triton passes for float16/bfloat16 on CUDA, torch ops otherwise;
    "triton" or "torch" forces one (the interpreter runs Triton's on the CPU). `sizes`:
    top_k_levels' sub and group (tests)."""
    return top_k_levels([rows], k, backend, **sizes)[0]


def top_k_levels(
    levels: list[torch.Tensor], k: int, backend: str = "auto", sub: int = SUB, group: int = GROUP
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """top_k_rows of each of several [N, L] tensors (a batch's levels), with one host sync
    for them all (two where a level's candidates above its floor overflow the buffer)."""
    if backend not in ("auto", "triton", "torch"):
        raise ValueError(f"top_k_rows: backend {backend!r} is not one of auto, triton, torch")
    selections = []
    for rows in levels:
        n, length = rows.shape
        sixteen = rows.dtype in _SIXTEEN_BIT
        if backend == "triton" and not sixteen:
            raise ValueError(
                f"top_k_rows: the Triton passes take float16/bfloat16, not {rows.dtype}"
            )
        passes = backend == "triton" or (backend == "auto" and sixteen and rows.is_cuda)
        selections.append(_Selection(rows, k, sub, group, passes))
    for stage in ("floor", "kth"):
        waiting = [s for s in selections if s.stage == stage]
        if waiting:
            counts = torch.stack([s.count.max() for s in waiting]).tolist()  # the sync
            for selection, count in zip(waiting, counts, strict=True):
                selection.next_stage(count)
    return [s.result for s in selections]


class _Selection:
    """One level's selection through its stages: "floor" (candidates above the floor
    written, pending their count), "kth" (above the exact k-th key), or done (`result`)."""

    def __init__(self, rows, k: int, sub: int, group: int, passes: bool):
        n, length = rows.shape
        self.rows, self.k, self.group = rows, max(0, min(k, length)), group
        # sub-chunks small enough that a level has k of them (a floor), where it can
        self.sub = max(16, min(sub, 1 << max(0, (length // max(1, self.k)).bit_length() - 1)))
        self.stage, self.result = None, None
        if n == 0 or self.k == 0:
            empty = torch.empty(n, self.k, dtype=torch.int64, device=rows.device)
            self.result = (rows.new_empty(n, self.k), empty)
        elif not passes:
            self._torch_ops()
        else:
            if rows.stride(1) != 1 or rows.stride(0) != length:
                self.rows = rows.contiguous()
            self._floor()

    def next_stage(self, count: int) -> None:
        if count <= self.keys.shape[1]:
            self.result = _best_candidates(self.rows, self.k, self.keys, self.positions)
        elif self.stage == "floor":
            self._kth()
        else:  # more ties of the k-th value than the buffer holds
            self._torch_ops()

    def _torch_ops(self):
        values, positions = _select_torch(self.rows, self.k)
        order = values.sort(dim=1, descending=True, stable=True).indices
        self.stage, self.result = None, (values.gather(1, order), positions.gather(1, order))

    def _launch(self, kernel, group: int, *args, **constants):
        n, length = self.rows.shape
        grid = (n, -(-self.chunks // group))
        nan_above = _SIXTEEN_BIT[self.rows.dtype]
        kernel[grid](*args, length, self.chunks, nan_above, SUB=self.sub, GROUP=group, **constants)

    def _floor(self):
        """Pass 0, then every key at or above the floor."""
        n, length = self.rows.shape
        device = self.rows.device
        self.bits = self.rows.view(torch.int16)
        self.chunks = -(-length // self.sub)
        self.maxima = torch.empty(n, self.chunks, dtype=torch.int32, device=device)
        floats = self.rows.dtype == torch.float16 and MAXIMA_OF_FLOATS
        source = self.rows if floats else self.bits
        self._launch(_sub_chunk_maxima, 8, source, self.maxima, FLOATS=floats)
        if self.chunks >= self.k:
            self.floor = self.maxima.topk(self.k, dim=1).values[:, -1].contiguous()
            self._write(self.floor)
            self.stage = "floor"
        else:  # fewer sub-chunks than k (a level of under 16 k values): no floor
            self.floor = torch.zeros(n, dtype=torch.int32, device=device)
            self._kth()

    def _kth(self):
        """Passes 1 and 2 (the exact k-th key), then every key at or above it."""
        n = len(self.rows)
        device = self.rows.device
        high_counts = torch.zeros(n, 256, dtype=torch.int32, device=device)
        args = (self.bits, self.maxima, self.floor)
        self._launch(_digit_counts, self.group, *args, self.floor, high_counts, LOW=False)
        high, higher = _kth_digit(high_counts, torch.full((n,), self.k, device=device))
        low_counts = torch.zeros(n, 256, dtype=torch.int32, device=device)
        self._launch(_digit_counts, self.group, *args, high.to(torch.int32), low_counts, LOW=True)
        low, _ = _kth_digit(low_counts, self.k - higher)
        self._write((high * 256 + low).to(torch.int32))
        self.stage = "kth"

    def _write(self, least: torch.Tensor):
        n = len(self.rows)
        device = self.rows.device
        width = WIDTH_FACTOR * self.k
        self.keys = torch.full((n, width), -1, dtype=torch.int32, device=device)
        self.positions = torch.empty(n, width, dtype=torch.int32, device=device)
        self.count = torch.zeros(n, dtype=torch.int32, device=device)
        self._launch(
            _write_candidates, self.group, self.bits, self.maxima, least, self.count,
            self.keys, self.positions, width,
        )  # fmt: skip


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


def _best_candidates(rows, k: int, keys, positions):
    """The k best of a row's candidates by key, then position: one topk of distinct int64s
    (key * 2^32 + 2^32 - 1 - position; an empty slot -1)."""
    packed = (keys.long() << 32) | (0xFFFFFFFF - positions.long())
    best = packed.masked_fill(keys < 0, -1).topk(k, dim=1).values
    index = 0xFFFFFFFF - (best & 0xFFFFFFFF)
    return rows.gather(1, index), index


def _kth_digit(counts: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """counts [N, 256] of a digit's values per row, k [N] >= 1 -> (the digit of each row's
    k-th largest, how many values have a larger digit), all int64."""
    from_top = counts.long().flip(1).cumsum(1).flip(1)  # [N, b]: digit >= b
    digit = (from_top >= k[:, None]).sum(1) - 1
    from_top = torch.cat([from_top, from_top.new_zeros(len(counts), 1)], 1)
    return digit, from_top.gather(1, (digit + 1)[:, None])[:, 0]
