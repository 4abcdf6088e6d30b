"""The k largest values of each row of a [N, L] tensor, best first, equal values by position:
exactly the first k of `rows.sort(dim=1, descending=True, stable=True)`, without the sort.

Per-level top-k over a batch's class logits is the device post-processing's largest step
(P3 at 800x800: 23.8 M logits an image, 1.5 GB a batch of 32 in float16). torch.topk took
5.4 ms a batch for P3 and 7.5 ms for the five levels on an H200 (benchmarks/gpu-h200.md),
15 times what reading P3 once costs (0.35 ms), and chooses among equal values in its own
way. For 16-bit floats on a GPU, `top_k_levels` selects in Triton passes that read the rows
in full once and then only the parts that can hold the k best:

0. every value's 16-bit *order key* (the float's bits, reordered so that integers compare
   as the floats do) and the largest key of each sub-chunk of up to SUB values. The k-th
   largest of these maxima is a *floor*: k values reach it, so the k-th largest value does
   too, and a sub-chunk whose maximum is below the floor holds nothing of the k best (P3
   has 23,203 sub-chunks a row, of which about k pass);
1. every key reaching the floor, with its position, into a buffer of WIDTH_FACTOR * k at
   slots taken from an atomic counter, which counts them all (those past the buffer too).
   One host sync for all the levels reads the counters: where a level's keys fit (the usual
   case) its candidates are there. Else, for that level:
2. how many keys are above the floor, and how many equal it in each sub-chunk (a second
   sync reads the most above it, for all such levels at once), then the k-th largest key t:
   the floor where fewer than k keys pass it (maps of few distinct values: random weights'
   are), otherwise from two histograms (high byte, then low byte, of the keys reaching the
   floor) and the counts at t; then every key above t (fewer than k) and the first ties of t
   by position, each sub-chunk's at slots known from the counts (a scan within the
   sub-chunk).

A row may be the padded grid of a framed map (`Frame`: the int8 head's maps are views of the
interior of padded buffers, triton_conv): the passes read it in place and leave the frame's
values out, as if the row held the interior alone; positions are the padded row's. A
sub-chunk then spans at most two pixels (SUB <= a pixel's values), so whether a value is in
the frame is one comparison with the sub-chunk's pixel boundary.

Each candidate is one int64, key * 2^32 + (2^32 - 1 - position), all distinct, so that one
torch.topk of the buffer gives the k best by value and then by position: the same result
on every run and device, whatever order the atomics wrote in. Triton's tl.histogram costs
7 times a plain read on the H200, hence the floor and the counts first. Float32 rows and the
CPU take torch ops (`_select_torch`) with the same result; on the CPU the Triton passes run
in Triton's interpreter (tests: `backend="triton"`). Values are taken as finite; -0.0 and
+0.0 count as equal, as the sort compares them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .triton_setup import max_combine, sum_combine  # first: the interpreter without CUDA

import triton  # noqa: E402  isort: skip
import triton.language as tl  # noqa: E402  isort: skip

SUB = 1024  # values of a sub-chunk at most: its maximum decides whether later passes read it
MIN_SUB = 16  # and at least (a framed row's pixel holds at least this many: Frame)
GROUP = 16  # sub-chunks a program takes in passes 1-3 (8 in pass 0)
# pass 0 on float16 takes the floats' maximum (H200, P3 at batch 32: 0.96 ms against 1.51
# for the keys'); bfloat16 takes the keys' (the interpreter holds bfloat16 as float32)
MAXIMA_OF_FLOATS = True
# a row's candidate buffer: 32 * k keys (the k best and their ties). Flat regions of an image
# give every pixel there the same logits, so one key a pixel or more reaches the floor: on the
# demo's flat-backed images at 800x800, up to 27,721 keys a row (P5, weights with spread
# logits; scripts/random_weights.py) where random input gives at most 3,770. Past the buffer,
# a level takes the count pass, a second host sync (one for all such levels) and up to five
# more passes over its rows (`finish`); the buffer's unused tail costs nothing, since the
# candidates' topk reads only the columns some row filled (`_best_of_levels`).
WIDTH_FACTOR = 32
# the 16-bit floats' bit patterns above which a value is NaN (|bits|): float16, bfloat16
_SIXTEEN_BIT = {torch.float16: 0x7C00, torch.bfloat16: 0x7F80}


@dataclass(frozen=True)
class Frame:
    """A row that is one image's padded grid: `rows` x `cols` pixels of `pixel` values each
    (pixel-major), whose outer ring of pixels (the frame) is left out of the selection."""

    rows: int
    cols: int
    pixel: int

    @property
    def length(self) -> int:
        return self.rows * self.cols * self.pixel

    @property
    def inner_length(self) -> int:
        return (self.rows - 2) * (self.cols - 2) * self.pixel

    def interior(self, rows: torch.Tensor) -> torch.Tensor:
        """[N, length] padded rows -> [N, (rows-2)*(cols-2)*pixel] their interiors (a copy)."""
        grid = rows.reshape(len(rows), self.rows, self.cols, self.pixel)
        return grid[:, 1:-1, 1:-1].reshape(len(rows), -1)

    def interior_pixel(self, pixel: torch.Tensor) -> torch.Tensor:
        """A pixel of the padded grid (inside the frame) -> its index in the interior."""
        return (pixel // self.cols - 1) * (self.cols - 2) + pixel % self.cols - 1

    def padded_position(self, position: torch.Tensor) -> torch.Tensor:
        """A position in the interior -> the same value's position in the padded row."""
        pixel, value = position // self.pixel, position % self.pixel
        inner = self.cols - 2
        return ((pixel // inner + 1) * self.cols + pixel % inner + 1) * self.pixel + value


# the kernels: triton.language's builtins, triton_setup's combine functions (triton_setup: why)


@triton.jit
def _interior_pixel(pixel, COLS: tl.constexpr, ROWS: tl.constexpr):
    row = pixel // COLS
    col = pixel - row * COLS
    return (row > 0) & (row < ROWS - 1) & (col > 0) & (col < COLS - 1)


@triton.jit
def _off_frame(start, index, PIXEL: tl.constexpr, COLS: tl.constexpr, ROWS: tl.constexpr):
    """Whether each position `index` (in [start, start + PIXEL)) of a framed row is outside
    its frame: the first pixel's verdict before the next pixel's boundary, the next's after.
    The geometry is constexpr (a compile a level): divisions by constants, and a boundary
    that the compiler knows as a multiple of PIXEL's power-of-two factor (2376 = 8 x 297),
    so that the masked loads stay vectorized."""
    pixel = start // PIXEL
    first = _interior_pixel(pixel, COLS, ROWS)
    second = _interior_pixel(pixel + 1, COLS, ROWS)
    return tl.where(index < (pixel + 1) * PIXEL, first, second)


@triton.jit
def _order_key(raw, NAN_ABOVE):
    """16-bit float bits -> int32 keys in [0, 65535] that compare as the floats: -0.0 as
    +0.0, every NaN the largest."""
    u = raw.to(tl.int32) & 0xFFFF
    u = tl.where(u == 0x8000, 0, u)
    key = tl.where((u & 0x8000) != 0, 0xFFFF - u, u | 0x8000)
    return tl.where((u & 0x7FFF) > NAN_ABOVE, 0xFFFF, key)


@triton.jit
def _sub_chunk_keys(
    bits_ptr,
    row,
    chunk,
    L,
    NAN_ABOVE,
    PIXEL: tl.constexpr,
    COLS: tl.constexpr,
    ROWS: tl.constexpr,
    FRAMED: tl.constexpr,
    SUB: tl.constexpr,
):
    """A sub-chunk's positions, which of them count (inside the row, and, FRAMED, outside
    the row's frame of ROWS x COLS pixels of PIXEL values) and their keys."""
    index = chunk * SUB + tl.arange(0, SUB)
    inside = index < L
    if FRAMED:
        inside = inside & _off_frame(chunk * SUB, index, PIXEL, COLS, ROWS)
    raw = tl.load(bits_ptr + row.to(tl.int64) * L + index, mask=inside, other=0)
    return index, inside, _order_key(raw, NAN_ABOVE)


@triton.jit
def _sub_chunk_maxima(
    rows_ptr,
    maxima_ptr,
    L,
    CHUNKS,
    NAN_ABOVE,
    PIXEL: tl.constexpr,
    COLS: tl.constexpr,
    ROWS: tl.constexpr,
    FLOATS: tl.constexpr,
    FRAMED: tl.constexpr,
    SUB: tl.constexpr,
    GROUP: tl.constexpr,
):
    """Pass 0: maxima[row, c] = the key of sub-chunk c's largest value (GROUP sub-chunks a
    program, read as one contiguous block). FLOATS: the maximum of the float16 values, then
    its key; else (rows_ptr: the bits) the maximum of the keys. FRAMED: a frame's values
    count as -inf (FLOATS) or key -1, below any other."""
    row = tl.program_id(0)
    first = tl.program_id(1) * GROUP
    chunk = first + tl.arange(0, GROUP)
    if FRAMED:  # [GROUP, SUB] loads: the frame's verdicts a sub-chunk, broadcast along it
        start = chunk[:, None] * SUB
        index = start + tl.arange(0, SUB)[None, :]
        inside = (index < L) & _off_frame(start, index, PIXEL, COLS, ROWS)
    else:  # one contiguous block
        index = first * SUB + tl.arange(0, GROUP * SUB)
        inside = index < L
    if FLOATS:
        values = tl.load(rows_ptr + row.to(tl.int64) * L + index, mask=inside, other=-float("inf"))
        if not FRAMED:
            values = tl.reshape(values, (GROUP, SUB))
        best = tl.reduce(values, 1, max_combine)
        key = _order_key(best.to(tl.int16, bitcast=True), NAN_ABOVE)
    else:
        raw = tl.load(rows_ptr + row.to(tl.int64) * L + index, mask=inside, other=0)
        keys = tl.where(inside, _order_key(raw, NAN_ABOVE), -1)
        if not FRAMED:
            keys = tl.reshape(keys, (GROUP, SUB))
        key = tl.reduce(keys, 1, max_combine)
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
    PIXEL: tl.constexpr,
    COLS: tl.constexpr,
    ROWS: tl.constexpr,
    LOW: tl.constexpr,
    FRAMED: tl.constexpr,
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
            _, inside, key = _sub_chunk_keys(
                bits_ptr, row, chunk, L, NAN_ABOVE, PIXEL, COLS, ROWS, FRAMED, SUB
            )
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
    least_ptr,  # [N] keys at or above it are written (STRICT: above it)
    count_ptr,  # [N] int32: candidates met so far (atomic)
    keys_ptr,  # [N, WIDTH] int32 out: the candidates' keys (-1 where none)
    index_ptr,  # [N, WIDTH] int32 out: their positions
    WIDTH,
    L,
    CHUNKS,
    NAN_ABOVE,
    PIXEL: tl.constexpr,
    COLS: tl.constexpr,
    ROWS: tl.constexpr,
    STRICT: tl.constexpr,
    FRAMED: tl.constexpr,
    SUB: tl.constexpr,
    GROUP: tl.constexpr,
):
    """Every key >= least[row] (STRICT: > least[row]) and its position, at slots taken from
    the row's counter (a sub-chunk's together); slots past WIDTH are counted, not written."""
    row = tl.program_id(0)
    least = tl.load(least_ptr + row) + STRICT
    for c in range(GROUP):
        chunk = tl.program_id(1) * GROUP + c
        best = tl.load(maxima_ptr + row * CHUNKS + chunk, mask=chunk < CHUNKS, other=-1)
        if best >= least:
            index, inside, key = _sub_chunk_keys(
                bits_ptr, row, chunk, L, NAN_ABOVE, PIXEL, COLS, ROWS, FRAMED, SUB
            )
            chosen = (inside & (key >= least)).to(tl.int32)
            base = tl.atomic_add(count_ptr + row, tl.reduce(chosen, 0, sum_combine))
            slot = base + tl.associative_scan(chosen, 0, sum_combine) - 1
            keep = (chosen != 0) & (slot < WIDTH)
            target = row.to(tl.int64) * WIDTH + slot
            tl.store(keys_ptr + target, key, mask=keep)
            tl.store(index_ptr + target, index, mask=keep)


@triton.jit
def _count_at_least(
    bits_ptr,
    maxima_ptr,
    least_ptr,  # [N] the key counted
    above_ptr,  # [N] int32 += the keys above it (atomic)
    equal_ptr,  # [N, CHUNKS] int32 out: each sub-chunk's keys equal to it
    L,
    CHUNKS,
    NAN_ABOVE,
    PIXEL: tl.constexpr,
    COLS: tl.constexpr,
    ROWS: tl.constexpr,
    FRAMED: tl.constexpr,
    SUB: tl.constexpr,
    GROUP: tl.constexpr,
):
    """How many keys are above least[row] in the row, and equal to it in each sub-chunk
    (sub-chunks whose maximum is below it are not read)."""
    row = tl.program_id(0)
    least = tl.load(least_ptr + row)
    above = least * 0
    for c in range(GROUP):
        chunk = tl.program_id(1) * GROUP + c
        best = tl.load(maxima_ptr + row * CHUNKS + chunk, mask=chunk < CHUNKS, other=-1)
        equal = least * 0
        if best >= least:
            _, inside, key = _sub_chunk_keys(
                bits_ptr, row, chunk, L, NAN_ABOVE, PIXEL, COLS, ROWS, FRAMED, SUB
            )
            above += tl.reduce((inside & (key > least)).to(tl.int32), 0, sum_combine)
            equal = tl.reduce((inside & (key == least)).to(tl.int32), 0, sum_combine)
        tl.store(equal_ptr + row * CHUNKS + chunk, equal, mask=chunk < CHUNKS)
    tl.atomic_add(above_ptr + row, above)


@triton.jit
def _write_ties(
    bits_ptr,
    least_ptr,  # [N] the tied key
    take_ptr,  # [N, CHUNKS] how many of the sub-chunk's ties are taken (its first)
    slot_ptr,  # [N, CHUNKS] the buffer slot of the sub-chunk's first tie taken
    keys_ptr,  # [N, WIDTH] int32 out
    index_ptr,  # [N, WIDTH] int32 out
    WIDTH,
    L,
    CHUNKS,
    NAN_ABOVE,
    PIXEL: tl.constexpr,
    COLS: tl.constexpr,
    ROWS: tl.constexpr,
    FRAMED: tl.constexpr,
    SUB: tl.constexpr,
    GROUP: tl.constexpr,
):
    """The first take[row, c] keys equal to least[row] of each sub-chunk c, in position
    order, at slots from slot[row, c] on."""
    row = tl.program_id(0)
    least = tl.load(least_ptr + row)
    for c in range(GROUP):
        chunk = tl.program_id(1) * GROUP + c
        take = tl.load(take_ptr + row * CHUNKS + chunk, mask=chunk < CHUNKS, other=0)
        if take > 0:
            index, inside, key = _sub_chunk_keys(
                bits_ptr, row, chunk, L, NAN_ABOVE, PIXEL, COLS, ROWS, FRAMED, SUB
            )
            tied = (inside & (key == least)).to(tl.int32)
            rank = tl.associative_scan(tied, 0, sum_combine) - 1
            chosen = (tied != 0) & (rank < take)
            start = tl.load(slot_ptr + row * CHUNKS + chunk)
            target = row.to(tl.int64) * WIDTH + start + rank
            tl.store(keys_ptr + target, key, mask=chosen)
            tl.store(index_ptr + target, index, mask=chosen)


def top_k_rows(rows: torch.Tensor, k: int, backend: str = "auto", **sizes):
    """(values [N, k'], positions [N, k'] int64) with k' = min(k, L): each row's k largest
    values, best first, equal values by position (the first ones taken), as
    `rows.sort(dim=1, descending=True, stable=True)` would give them. rows: [N, L].
    backend "auto": the Triton passes for float16/bfloat16 on CUDA, torch ops otherwise;
    "triton" or "torch" forces one (the interpreter runs Triton's on the CPU). `sizes`:
    top_k_levels' sub, group and width_factor (tests)."""
    return top_k_levels([rows], k, backend, **sizes)[0]


def top_k_levels(
    levels: list[torch.Tensor],
    k: int,
    backend: str = "auto",
    sub: int = SUB,
    group: int = GROUP,
    frames: list[Frame | None] | None = None,
    width_factor: int = WIDTH_FACTOR,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """top_k_rows of each of several [N, L] tensors (a batch's levels), with one host sync
    for them all (two where a level's candidates above its floor overflow the buffer of
    `width_factor` * k keys a row).
    `frames`: per level None, or the Frame of its rows (padded grids): the frame's values
    left out, k' = min(k, the interior's length), positions in the padded rows."""
    if width_factor < 1:
        raise ValueError(f"top_k_levels: width_factor must be at least 1, got {width_factor}")
    if backend not in ("auto", "triton", "torch"):
        raise ValueError(f"top_k_rows: backend {backend!r} is not one of auto, triton, torch")
    frames = frames or [None] * len(levels)
    if len(frames) != len(levels):
        raise ValueError(f"top_k_levels: {len(frames)} frames for {len(levels)} levels")
    selections = []
    for rows, frame in zip(levels, frames, strict=True):
        sixteen = rows.dtype in _SIXTEEN_BIT
        if backend == "triton" and not sixteen:
            raise ValueError(
                f"top_k_rows: the Triton passes take float16/bfloat16, not {rows.dtype}"
            )
        if frame is not None and (rows.shape[1] != frame.length or frame.pixel < MIN_SUB):
            raise ValueError(
                f"top_k_levels: rows {tuple(rows.shape)} are not padded grids of {frame} "
                f"(a pixel of at least {MIN_SUB} values)"
            )
        passes = backend == "triton" or (backend == "auto" and sixteen and rows.is_cuda)
        selections.append(_Selection(rows, k, sub, group, passes, frame, width_factor))
    waiting = [s for s in selections if s.result is None]
    if waiting:  # the one sync: how many keys reached each level's floor
        reached = torch.stack([s.reached.max() for s in waiting]).tolist()
        past = [s for s, most in zip(waiting, reached, strict=True) if most > s.keys.shape[1]]
        above: dict[_Selection, int] = {}
        if past:  # the second, for all the levels past their buffers at once
            counts = torch.stack([s.count_at_floor() for s in past]).tolist()
            above = dict(zip(past, counts, strict=True))
        candidates = [
            s.finish(most, above.get(s)) for s, most in zip(waiting, reached, strict=True)
        ]
        _best_of_levels(waiting, candidates)
    return [s.result for s in selections]


class _Selection:
    """One level's selection: the floor and the count of keys reaching it at once (Triton
    passes), the candidates once the counts are on the host (`finish`), the k best of them
    with the other levels' (`_best_of_levels`)."""

    def __init__(
        self, rows, k: int, sub: int, group: int, passes: bool, frame: Frame | None,
        width_factor: int = WIDTH_FACTOR,
    ):  # fmt: skip
        n, length = rows.shape
        self.width_factor = width_factor
        counted = length if frame is None else frame.inner_length
        self.rows, self.k, self.group, self.frame = rows, max(0, min(k, counted)), group, frame
        # sub-chunks small enough that a level has k of them (a floor), where it can (the
        # frame's count -inf); in a framed row no larger than a pixel (then they span two
        # pixels at most)
        self.sub = max(MIN_SUB, min(sub, 1 << max(0, (counted // max(1, self.k)).bit_length() - 1)))
        if frame is not None:
            self.sub = min(self.sub, 1 << (frame.pixel.bit_length() - 1))
        self.result = None
        if n == 0 or self.k == 0:
            empty = torch.empty(n, self.k, dtype=torch.int64, device=rows.device)
            self.result = (rows.new_empty(n, self.k), empty)
        elif not passes:
            inner = rows if frame is None else frame.interior(rows)
            values, positions = _select_torch(inner, self.k)
            order = values.sort(dim=1, descending=True, stable=True).indices
            positions = positions.gather(1, order)
            if frame is not None:
                positions = frame.padded_position(positions)
            self.result = (values.gather(1, order), positions)
        else:
            if rows.stride(1) != 1 or rows.stride(0) != length:
                self.rows = rows.contiguous()
            self._floor()

    def _launch(self, kernel, group: int, *args, **constants):
        n, length = self.rows.shape
        grid = (n, -(-self.chunks // group))
        nan_above = _SIXTEEN_BIT[self.rows.dtype]
        frame = self.frame or Frame(1, 1, 0)
        kernel[grid](
            *args, length, self.chunks, nan_above, PIXEL=frame.pixel, COLS=frame.cols,
            ROWS=frame.rows, FRAMED=self.frame is not None, SUB=self.sub, GROUP=group,
            **constants,
        )  # fmt: skip

    def _floor(self):
        """Pass 0, the floor, and every key reaching it written (`keys`, `positions`) where
        the buffer holds them, all counted (`reached`, [N])."""
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
        else:  # fewer sub-chunks than k (a level of under 16 k values): no floor
            self.floor = torch.zeros(n, dtype=torch.int32, device=device)
        width = self.width_factor * self.k
        self.keys = torch.full((n, width), -1, dtype=torch.int32, device=device)
        self.positions = torch.empty_like(self.keys)
        self.reached = self._write(self.floor, self.keys, self.positions, strict=False)

    def _count(self, least):
        n = len(self.rows)
        above = torch.zeros(n, dtype=torch.int32, device=self.rows.device)
        equal = torch.empty(n, self.chunks, dtype=torch.int32, device=self.rows.device)
        self._launch(_count_at_least, self.group, self.bits, self.maxima, least, above, equal)
        return above, equal

    def count_at_floor(self) -> torch.Tensor:
        """For a level whose keys at its floor overflowed the buffer: the buffer emptied, the
        keys above the floor and each sub-chunk's ties of it counted; returns (a 0-d tensor,
        no sync) the most keys a row has above its floor, for `finish`."""
        self.keys.fill_(-1)
        self.counted = self._count(self.floor)
        return self.counted[0].max()

    def finish(
        self, reached: int, above_floor: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """With the most keys a row has at its floor (`reached`): the keys written where they
        fit the buffer, else (after count_at_floor, whose count is `above_floor`) the k best
        by value and position from the keys above the k-th largest key and the first of its
        ties (the floor, where fewer than k keys pass it): the candidates' (keys, positions),
        [N, width] each, for _best_of_levels: the buffer's first `width` columns, which hold
        every row's candidates (at least k)."""
        keys, positions = self.keys, self.positions
        if reached <= keys.shape[1]:
            width = max(self.k, reached)
            return keys[:, :width], positions[:, :width]
        passing, equal = self.counted
        kth = self.floor
        if above_floor >= self.k:  # a row has k keys above its floor: the k-th
            kth = self._kth()
            passing, equal = self._count(kth)
        self._write(kth, keys, positions, strict=True)  # `passing` of them, < k
        before = equal.cumsum(1) - equal  # ties in earlier sub-chunks
        take = ((self.k - passing)[:, None] - before).clamp(min=0).minimum(equal)
        slot = (passing[:, None] + before).to(torch.int32)
        self._launch(
            _write_ties, self.group, self.bits, kth, take.to(torch.int32), slot, keys,
            positions, keys.shape[1],
        )  # fmt: skip
        return keys[:, : self.k], positions[:, : self.k]  # `passing` + ties: k a row

    def _kth(self) -> torch.Tensor:
        """Passes 1 and 2: each row's k-th largest key (>= the floor)."""
        n = len(self.rows)
        device = self.rows.device
        high_counts = torch.zeros(n, 256, dtype=torch.int32, device=device)
        args = (self.bits, self.maxima, self.floor)
        self._launch(_digit_counts, self.group, *args, self.floor, high_counts, LOW=False)
        high, higher = _kth_digit(high_counts, torch.full((n,), self.k, device=device))
        low_counts = torch.zeros(n, 256, dtype=torch.int32, device=device)
        self._launch(_digit_counts, self.group, *args, high.to(torch.int32), low_counts, LOW=True)
        low, _ = _kth_digit(low_counts, self.k - higher)
        return (high * 256 + low).to(torch.int32).contiguous()

    def _write(self, least, keys, positions, strict: bool) -> torch.Tensor:
        """Every key reaching `least` (strict: above it) into the buffers, where they hold
        them; returns [N] how many there were."""
        count = torch.zeros(len(self.rows), dtype=torch.int32, device=self.rows.device)
        self._launch(
            _write_candidates, self.group, self.bits, self.maxima, least, count, keys,
            positions, keys.shape[1], STRICT=strict,
        )  # fmt: skip
        return count


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


def _best_of_levels(selections: list[_Selection], candidates: list[tuple]) -> None:
    """Each selection's result: the k best of its candidates (`finish`'s keys and positions)
    by key, then position: one topk of distinct int64s
    (key * 2^32 + 2^32 - 1 - position; an empty slot -1) for all the levels of one k (the
    usual), their rows stacked, as wide as the widest one's filled columns. torch.topk takes
    a block a row, so a level's 32 rows alone leave most of a GPU idle (0.72 ms of topk a
    batch of 32 on the H200 for the five levels, two topk's each)."""
    by_k: dict[int, list] = {}
    for selection, found in zip(selections, candidates, strict=True):
        by_k.setdefault(selection.k, []).append((selection, *found))
    for k, group in by_k.items():
        selected, keys, positions = zip(*group, strict=True)
        # the levels' rows stacked, as wide as the widest level's filled columns
        width = max(part.shape[1] for part in keys)
        rows = sum(len(part) for part in keys)
        stacked_keys = keys[0].new_full((rows, width), -1)
        stacked_positions = positions[0].new_zeros((rows, width))
        start = 0
        for part, where in zip(keys, positions, strict=True):
            stacked_keys[start : start + len(part), : part.shape[1]] = part
            stacked_positions[start : start + len(part), : part.shape[1]] = where
            start += len(part)
        packed = (stacked_keys.long() << 32) | (0xFFFFFFFF - stacked_positions.long())
        best = packed.masked_fill(stacked_keys < 0, -1).topk(k, dim=1).values
        index = 0xFFFFFFFF - (best & 0xFFFFFFFF)
        for selection, rows_index in zip(selected, index.split([len(s.rows) for s in selected])):
            selection.result = selection.rows.gather(1, rows_index), rows_index


def _kth_digit(counts: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """counts [N, 256] of a digit's values per row, k [N] >= 1 -> (the digit of each row's
    k-th largest, how many values have a larger digit), all int64."""
    from_top = counts.long().flip(1).cumsum(1).flip(1)  # [N, b]: digit >= b
    digit = (from_top >= k[:, None]).sum(1) - 1
    from_top = torch.cat([from_top, from_top.new_zeros(len(counts), 1)], 1)
    return digit, from_top.gather(1, (digit + 1)[:, None])[:, 0]
