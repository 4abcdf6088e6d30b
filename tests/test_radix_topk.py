"""radix_topk.top_k_rows promises exactly the first k of a stable descending sort: the k
largest values, best first, equal values by position. Both backends are held to that oracle
on the hard cases (ties across chunk boundaries, one value everywhere, signed zeros,
infinities, k at and beyond the row's length); the Triton passes run in Triton's interpreter
here, with small chunks and blocks so that a row spans many programs and tiles."""

import pytest
import torch

from retinaflow.radix_topk import top_k_rows

# sub-chunks of 16 values, 4 a program: rows of thousands span hundreds of sub-chunks, so
# that k = 1 or 37 prunes with the floor and k = 1000 (more than the sub-chunks) does not
SMALL = {"sub": 16, "group": 4}


def _oracle(rows, k):
    values, positions = rows.sort(dim=1, descending=True, stable=True)
    return values[:, :k], positions[:, :k]


def _assert_oracle(rows, k, backend):
    values, positions = top_k_rows(rows, k, backend=backend, **SMALL)
    want_values, want_positions = _oracle(rows, k)
    assert values.dtype == rows.dtype and positions.dtype == torch.int64
    assert torch.equal(positions, want_positions)
    assert torch.equal(values, want_values)


def _rows(kind, dtype):
    gen = torch.Generator().manual_seed(len(kind))
    if kind == "random":
        return torch.randn(3, 5000, generator=gen).to(dtype)
    if kind == "ties":  # seven values only: ties straddle every chunk and the k-th place
        return (torch.randint(-3, 4, (2, 3000), generator=gen) * 0.5).to(dtype)
    if kind == "one value":
        return torch.full((2, 3000), -1.0, dtype=dtype)
    if kind == "signed zeros":  # -0.0 == +0.0: ties by position, whatever the sign bit
        rows = torch.randn(2, 4000, generator=gen).clamp(max=0.0).to(dtype)
        rows[0, ::3] = -0.0
        return rows
    if kind == "infinities":
        rows = torch.randn(2, 3000, generator=gen).to(dtype)
        rows[:, 100::700] = torch.inf
        rows[:, 50::300] = -torch.inf
        return rows
    if kind == "dense logits":  # the random-weight head's maps: N(-1, 0.05) in float16
        return (torch.randn(2, 6000, generator=gen) * 0.05 - 1).to(dtype)
    raise AssertionError(kind)


KINDS = ["random", "ties", "one value", "signed zeros", "infinities", "dense logits"]


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_equals_a_stable_descending_sort(kind, dtype, backend):
    rows = _rows(kind, dtype)
    for k in (1, 37, 1000, rows.shape[1] - 1):
        _assert_oracle(rows, k, backend)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 255), (4, 1024), (2, 1025), (1, 3 * 1024 + 17)], ids=str
)
def test_rows_at_block_and_chunk_edges(shape, backend):
    """Rows shorter than a tile, exactly a chunk, a chunk and one, and k beyond the row
    (every value, sorted)."""
    rows = (torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 4).round()
    rows = rows.half()
    for k in (1, shape[1], shape[1] + 5):
        _assert_oracle(rows, k, backend)


def test_float32_rows_take_the_torch_ops():
    rows = torch.randn(2, 3000, generator=torch.Generator().manual_seed(2))
    _assert_oracle(rows, 100, "auto")
    with pytest.raises(ValueError, match="float16/bfloat16, not torch.float32"):
        top_k_rows(rows, 10, backend="triton")
    with pytest.raises(ValueError, match="backend 'cuda' is not one of"):
        top_k_rows(rows, 10, backend="cuda")


def test_nothing_to_take():
    rows = torch.randn(3, 50).half()
    for backend in ("torch", "triton"):
        values, positions = top_k_rows(rows, 0, backend=backend)
        assert values.shape == positions.shape == (3, 0)
    values, positions = top_k_rows(rows[:0], 10)
    assert values.shape == positions.shape == (0, 10)


def test_a_channels_last_levels_rows_are_read_in_place():
    """The device path hands a channels-last map's flat view; the selection reads it as it
    is (positions in that memory order) and gives the sort's answer."""
    nhwc = torch.randn(2, 6, 7, 54, generator=torch.Generator().manual_seed(4)).half()
    rows = nhwc.permute(0, 3, 1, 2).permute(0, 2, 3, 1).reshape(2, -1)
    assert rows.data_ptr() == nhwc.data_ptr()
    _assert_oracle(rows, 300, "triton")


def test_ties_past_the_buffer_are_taken_by_position(monkeypatch):
    """Rows of few values (random weights' maps: a handful of distinct float16 logits) have
    thousands of ties at the k-th place, more than a buffer of 8 * k holds: the
    floor is then the k-th key, fewer than k keys pass it, and the first of its ties by
    position fill the rest, with no histogram and no torch ops."""
    from retinaflow import radix_topk

    calls = []
    for name in ("_select_torch",):
        original = getattr(radix_topk, name)
        monkeypatch.setattr(radix_topk, name, lambda *a, o=original: calls.append(1) or o(*a))
    kth = radix_topk._Selection._kth
    monkeypatch.setattr(radix_topk._Selection, "_kth", lambda self: calls.append(2) or kth(self))
    gen = torch.Generator().manual_seed(8)
    few = (torch.randint(0, 3, (2, 3000), generator=gen) * 0.25 - 1).half()
    for rows in (torch.full((2, 3000), -1.0, dtype=torch.float16), few):
        for k in (37, 100):
            values, positions = top_k_rows(rows, k, backend="triton", width_factor=8, **SMALL)
            want_values, want_positions = _oracle(rows, k)  # > 1,000 ties > 8 * 100
            assert torch.equal(positions, want_positions) and torch.equal(values, want_values)
    assert calls == []


def test_levels_in_one_call_equal_each_alone():
    """top_k_levels (the batch's levels, one host sync, the candidates' topk of levels with
    one k stacked) gives each level's top_k_rows: levels of 3 and 2 rows, and one shorter
    than k (all 60 values taken: a k of its own)."""
    from retinaflow.radix_topk import top_k_levels

    levels = [_rows(kind, torch.float16) for kind in ("random", "ties", "infinities")]
    levels.append(torch.randn(2, 60, generator=torch.Generator().manual_seed(9)).half())
    together = top_k_levels(levels, 100, backend="triton", **SMALL)
    for rows, (values, positions) in zip(levels, together, strict=True):
        want_values, want_positions = _oracle(rows, 100)
        assert torch.equal(values, want_values) and torch.equal(positions, want_positions)


def test_a_loose_floor_takes_the_exact_kth_key(monkeypatch):
    """Where more values reach the floor than the buffer holds and k of them pass it, the
    histograms find the exact k-th key and the writes take only what reaches it. Here the
    first 40 sub-chunks of 16 hold ascending large values: the floor is sub-chunk 3's
    maximum (the 37th largest maximum), which 577 values reach (> 8 * 37), and the 37th
    largest value 37."""
    from retinaflow import radix_topk

    calls = []
    kth = radix_topk._Selection._kth
    monkeypatch.setattr(radix_topk._Selection, "_kth", lambda self: calls.append(1) or kth(self))
    rows = torch.randn(2, 3000, generator=torch.Generator().manual_seed(6)).half()
    rows[:, :640] = 100 + torch.arange(640) / 8
    values, positions = top_k_rows(rows, 37, backend="triton", width_factor=8, **SMALL)
    want_values, want_positions = _oracle(rows, 37)
    assert torch.equal(positions, want_positions) and torch.equal(values, want_values)
    assert calls == [1]


def test_levels_past_their_buffers_share_one_second_sync(monkeypatch):
    """Two levels whose keys at the floor overflow the buffer, one of few values (the floor
    is the k-th key) and one with a loose floor (the histograms find the k-th key), and one
    that fits: each gives the sort's answer, and the whole call reads the device twice (the
    counts at the floors, then the most keys above them for both overflowing levels)."""
    from retinaflow.radix_topk import top_k_levels

    gen = torch.Generator().manual_seed(11)
    few = (torch.randint(0, 3, (2, 3000), generator=gen) * 0.25 - 1).half()
    loose = torch.randn(2, 3000, generator=gen).half()
    loose[:, :640] = 100 + torch.arange(640) / 8
    fits = _rows("random", torch.float16)
    reads = []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: reads.append(1) or tolist(self))
    for read in ("item", "__int__", "__bool__"):  # no other read of the device
        monkeypatch.setattr(torch.Tensor, read, lambda self, r=read: pytest.fail(r))
    results = top_k_levels([few, loose, fits], 37, "triton", width_factor=8, **SMALL)
    assert len(reads) == 2
    monkeypatch.undo()
    for rows, (values, positions) in zip((few, loose, fits), results, strict=True):
        want_values, want_positions = _oracle(rows, 37)
        assert torch.equal(positions, want_positions) and torch.equal(values, want_values)


def test_a_flat_regions_keys_fit_the_buffer(monkeypatch):
    """An image's flat region gives every pixel there the same logits, so its best value
    reaches the floor once a pixel: 300 pixels of 48 values, 280 of them flat, k = 20. The
    default buffer (32 * k = 640 keys a row) holds those 280 keys and the rows' topk reads
    them with no count pass; a buffer of 8 * k (160) overflows and takes the count pass: both
    give the sort's answer, and a second level whose keys fill fewer columns shares the one
    topk."""
    from retinaflow import radix_topk
    from retinaflow.radix_topk import top_k_levels

    counts = []
    count = radix_topk._Selection._count
    monkeypatch.setattr(
        radix_topk._Selection, "_count", lambda self, least: counts.append(1) or count(self, least)
    )
    gen = torch.Generator().manual_seed(10)
    pixels = torch.randn(2, 300, 48, generator=gen) - 3
    pixels[:, 10:290] = torch.randn(48, generator=gen)  # the flat region: one pixel repeated
    flat = pixels.reshape(2, -1).half()
    sparse = _rows("random", torch.float16)
    for factor, overflows in ((radix_topk.WIDTH_FACTOR, False), (8, True)):
        counts.clear()
        results = top_k_levels([flat, sparse], 20, "triton", width_factor=factor, **SMALL)
        for rows, (values, positions) in zip((flat, sparse), results, strict=True):
            want_values, want_positions = _oracle(rows, 20)
            assert torch.equal(positions, want_positions) and torch.equal(values, want_values)
        assert bool(counts) == overflows


def _framed(interior, rows, cols, frame_value):
    """[N, rows*cols*pixel] padded grids around `interior` ([N, rows-2, cols-2, pixel]), the
    frame's pixels all `frame_value`: larger than every interior value, so that one leaking
    into the selection shows."""
    n, _, _, pixel = interior.shape
    grid = torch.full((n, rows, cols, pixel), frame_value, dtype=interior.dtype)
    grid[:, 1:-1, 1:-1] = interior
    return grid.reshape(n, -1)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("kind", ["random", "ties", "dense logits"])
def test_a_framed_row_selects_from_its_interior_alone(kind, backend):
    """A padded grid (the int8 head's maps, read in place) gives the interior's own top-k,
    positions in the padded row: the frame's values (here the largest of all, and a tie of
    the interior's best in one image) are never taken, k beyond the interior is cut to it.
    Pixels of 18 values: sub-chunks of 16 straddle pixel boundaries, rows of the frame
    included."""
    from retinaflow.radix_topk import Frame, top_k_levels

    frame = Frame(rows=12, cols=14, pixel=18)
    flat = _rows(kind, torch.float16)[:, : frame.inner_length]
    interior = flat.reshape(len(flat), 10, 12, 18)
    rows = _framed(interior, frame.rows, frame.cols, 1000.0)
    rows[1].view(frame.rows, frame.cols, 18)[0] = flat[1].max()  # ties, in the frame
    for k in (1, 37, 300, frame.inner_length, frame.inner_length + 50):
        ((values, positions),) = top_k_levels([rows], k, backend, frames=[frame], **SMALL)
        want_values, want_positions = _oracle(flat, k)
        assert torch.equal(values, want_values)
        assert torch.equal(positions, frame.padded_position(want_positions))
        assert torch.equal(rows.gather(1, positions), values)


def test_padded_positions_follow_the_grid():
    """Frame.padded_position maps the interior's positions where the interior sits in the
    padded row, in order."""
    from retinaflow.radix_topk import Frame

    frame = Frame(rows=5, cols=4, pixel=3)
    marked = frame.interior(torch.arange(frame.length)[None])[0]
    assert marked.numel() == frame.inner_length == 3 * 2 * 3
    assert torch.equal(frame.padded_position(torch.arange(frame.inner_length)), marked)


def test_rows_that_are_not_the_frames_grids_are_refused():
    """A Frame must describe the rows: their length, a pixel of at least 16 values (a
    sub-chunk of 16 spans two pixels at most), one frame a level."""
    from retinaflow.radix_topk import Frame, top_k_levels

    rows = torch.zeros(2, 4 * 5 * 18, dtype=torch.float16)
    with pytest.raises(ValueError, match="not padded grids of Frame"):
        top_k_levels([rows], 5, frames=[Frame(rows=5, cols=5, pixel=18)])
    with pytest.raises(ValueError, match="a pixel of at least 16"):
        top_k_levels([rows[:, :160]], 5, frames=[Frame(rows=4, cols=5, pixel=8)])
    with pytest.raises(ValueError, match="2 frames for 1 levels"):
        top_k_levels([rows], 5, frames=[None, None])
