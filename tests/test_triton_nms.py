"""The Triton greedy NMS kernel (triton_nms), which batched_greedy_nms runs on CUDA: its keep
mask equals the torch fixed point's bit for bit, and through batched_greedy_nms it keeps what
torchvision's CPU nms keeps. CI has no GPU: the kernel runs in Triton's interpreter
(triton_nms sets TRITON_INTERPRET=1 when PyTorch sees no CUDA GPU), the same kernel source
the GPU compiles; what the interpreter cannot show is the GPU's rounding (the module's
docstring: div_rn, no fused multiply-adds)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from retinaflow import batched_nms, triton_nms
from retinaflow.batched_nms import (
    _greedy_fixed_point,
    _score_order,
    _suppression,
    batched_greedy_nms,
)
from retinaflow.triton_nms import MAX_BOXES, TILE, greedy_nms_ranked

from .test_device_postprocess import (
    _assert_torchvision_kept,
    _chain_images,
    _image,
    _iou32,
    _padded,
    _random_boxes,
    _threshold_images,
    _tie_images,
)

# Boxes of no area (and the zero padding) have IoU 0/0 = NaN, not over any threshold, as in
# torchvision; numpy, the interpreter's arithmetic, warns of it.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in divide")


def _ranked(boxes, scores, valid):
    order = _score_order(scores, valid)
    return boxes.gather(1, order[:, :, None].expand(-1, -1, 4)), valid.gather(1, order)


def _fixed_point(ranked, valid, threshold=0.5):
    return _greedy_fixed_point(_suppression(ranked, threshold), valid)


def _assert_kernel_kept(images, threshold=0.5):
    """On the images as one padded batch (padding between and after each image's entries):
    the kernel's keep mask (rank order) is the torch fixed point's, and batched_greedy_nms
    through the kernel keeps what torchvision.ops.nms keeps; returns torchvision's."""
    ranked, valid = _ranked(*_padded(images))
    keep = greedy_nms_ranked(ranked, valid, threshold)
    assert keep.dtype == torch.bool and keep.shape == valid.shape
    assert torch.equal(keep, _fixed_point(ranked, valid, threshold))
    return _assert_torchvision_kept(images, threshold, backend="triton")


def test_ties_and_identical_boxes():
    images, expected = _tie_images()
    assert _assert_kernel_kept(images) == expected


def test_at_the_threshold_and_an_ulp_either_side():
    images, expected = _threshold_images()
    assert _assert_kernel_kept(images) == expected


def test_compares_with_the_threshold_in_double():
    """An IoU of float32(0.3), above 0.3, is suppressed at 0.3 (the kernel compares with
    threshold_below(0.3)), kept at float32(0.3) itself."""
    a, b = [0.0, 0.0, 10.0, 1.0], [0.0, 0.0, 3.0, 1.0]
    assert _iou32(a, b) == np.float32(0.3)
    assert _assert_kernel_kept([_image([a, b], [0.9, 0.8])], threshold=0.3) == [[0]]
    at_float = float(np.float32(0.3))
    assert _assert_kernel_kept([_image([a, b], [0.9, 0.8])], threshold=at_float) == [[0, 1]]


def test_suppression_chains():
    kept = _assert_kernel_kept(_chain_images())
    assert kept[0] == list(range(0, 60, 2)) and kept[2] == [0, 2]
    assert len(kept[1]) == 30


def test_empty_images_and_a_batch_of_one():
    one = _image([[0.0, 0.0, 4.0, 4.0], [1.0, 0.0, 4.0, 4.0]], [0.2, 0.1])
    empty = _image(torch.zeros(0, 4).tolist(), [])
    assert _assert_kernel_kept([one]) == [[0]]
    assert _assert_kernel_kept([empty, one, empty]) == [[], [0], []]
    assert _assert_kernel_kept([empty]) == [[]]
    assert greedy_nms_ranked(torch.zeros(2, 0, 4), torch.zeros(2, 0) > 0, 0.5).shape == (2, 0)
    assert greedy_nms_ranked(torch.zeros(0, 5, 4), torch.zeros(0, 5) > 0, 0.5).shape == (0, 5)


def test_one_box_an_image():
    """P = 1 (no loop step suppresses anything): kept where valid."""
    boxes = torch.tensor([[[0.0, 0.0, 2.0, 2.0]], [[1.0, 1.0, 3.0, 3.0]]])
    valid = torch.tensor([[True], [False]])
    keep = greedy_nms_ranked(boxes, valid, 0.5)
    assert keep.tolist() == [[True], [False]]
    assert torch.equal(keep, _fixed_point(boxes, valid))


def test_padding_in_the_middle_and_at_the_end():
    """Ranked entries not valid neither are kept nor suppress, wherever they are: a copy of
    a kept box first and in the middle (which would suppress the boxes after it), and at the
    end a copy that the first box would suppress. P = 7, not a power of two."""
    a, b, c = [0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0], [30.0, 0.0, 40.0, 10.0]
    ranked = torch.tensor([[c, a, c, b, a, c, a]])  # a suppresses b; c overlaps neither
    valid = torch.tensor([[False, True, False, True, False, True, False]])
    keep = greedy_nms_ranked(ranked, valid, 0.5)
    assert keep.tolist() == [[False, True, False, False, False, True, False]]
    assert torch.equal(keep, _fixed_point(ranked, valid))
    everything = greedy_nms_ranked(ranked, torch.ones_like(valid), 0.5)
    assert everything.tolist() == [[True, True, False, False, False, False, False]]


@pytest.mark.parametrize("width", [5, 17, 100, 257])
def test_widths_not_a_power_of_two(width):
    """Crowded random boxes with tied scores, some padding, in blocks wider than the list."""
    gen = torch.Generator().manual_seed(1000 + width)
    boxes = _random_boxes(2 * width, gen, spread=4.0, size=20.0).view(2, width, 4)
    valid = torch.rand(2, width, generator=gen) > 0.2
    keep = greedy_nms_ranked(boxes, valid, 0.5)
    expected = _fixed_point(boxes, valid)
    assert torch.equal(keep, expected)
    assert expected.sum() < valid.sum()  # some suppressions happened


def test_large_random_images():
    """Crowded images with quantised (tied) scores: 3 images of 1,000 boxes (the device path's
    NMS prefix, the kernel's usual width, BLOCK 1024) and two smaller ones. Sized for the
    interpreter: this runs the kernel twice in about 10 s on a shared 2-core machine."""
    gen = torch.Generator().manual_seed(3)
    images = []
    for count in (1000, 1000, 17, 1000, 300):
        scores = (torch.rand(count, generator=gen) * 40).round() / 40
        images.append((_random_boxes(count, gen), scores))
    start = time.perf_counter()
    kept = _assert_kernel_kept(images)
    assert time.perf_counter() - start < 60, "too slow for the interpreter: shrink the images"
    assert all(0 < len(k) < len(s) for k, (_, s) in zip(kept, images) if len(s) > 17)


def test_backend_choice(monkeypatch):
    """ "triton" runs the kernel (here through the interpreter); "auto" runs it only on CUDA,
    so on the CPU it runs the torch fixed point; an unknown backend is refused."""
    calls = []
    kernel = triton_nms.greedy_nms_ranked
    monkeypatch.setattr(
        triton_nms, "greedy_nms_ranked", lambda *args: calls.append(args) or kernel(*args)
    )
    boxes, scores, valid = _padded([_image([[0.0, 0.0, 4.0, 4.0], [1.0, 0.0, 4.0, 4.0]], [1, 2])])
    auto = batched_greedy_nms(boxes, scores, valid, 0.5)
    assert calls == []
    forced = batched_greedy_nms(boxes, scores, valid, 0.5, backend="triton")
    assert len(calls) == 1 and torch.equal(forced, auto)
    assert torch.equal(batched_greedy_nms(boxes, scores, valid, 0.5, backend="torch"), auto)
    with pytest.raises(ValueError, match="backend"):
        batched_greedy_nms(boxes, scores, valid, 0.5, backend="cuda")


def test_kernel_limits():
    """The kernel takes float32 boxes and tiles of a power of two (16 or more); batched_nms
    knows the one-tile kernel's width without importing triton, and so must its constant
    say."""
    assert batched_nms.TRITON_MAX_BOXES == MAX_BOXES
    with pytest.raises(ValueError, match="float32"):
        greedy_nms_ranked(torch.zeros(1, 3, 4, dtype=torch.float64), torch.ones(1, 3) > 0, 0.5)
    for tile in (8, 48):
        with pytest.raises(ValueError, match="power of two of 16 or more, not"):
            greedy_nms_ranked(torch.zeros(1, 3, 4), torch.ones(1, 3) > 0, 0.5, tile=tile)


def test_auto_backend_choice(monkeypatch):
    """The "auto" backend takes the kernel for float32 boxes on CUDA: up to MAX_BOXES an image,
    wider lists with TILED_WIDE_LISTS (on by default: timed on the H200), else in torch; never
    on the CPU."""
    choose = batched_nms.auto_backend
    assert choose(True, torch.float32, MAX_BOXES) == "triton"
    assert choose(True, torch.float64, 10) == "torch"
    assert choose(False, torch.float32, 10) == "torch"
    assert batched_nms.TILED_WIDE_LISTS is True
    assert choose(True, torch.float32, 5000) == "triton"
    assert choose(False, torch.float32, 5000) == "torch"
    monkeypatch.setattr(batched_nms, "TILED_WIDE_LISTS", False)
    assert choose(True, torch.float32, MAX_BOXES + 1) == "torch"


def _per_tile(ranked, valid, tile):
    """Each tile's NMS on its own, as if no box of an earlier tile were kept."""
    parts = [
        _fixed_point(ranked[:, i : i + tile], valid[:, i : i + tile])
        for i in range(0, ranked.shape[1], tile)
    ]
    return torch.cat(parts, 1)


@pytest.mark.parametrize("tile", [16, 64])
@pytest.mark.parametrize("limit", [None, 0, 1, 7, 30])
def test_tiles_give_the_one_walks_keep_mask(tile, limit):
    """The tiled walk (a tile's boxes first meet every box kept in the earlier tiles) keeps
    what one walk over the whole list keeps, with and without a limit, on images where boxes
    kept in one tile suppress boxes of later ones (tiles alone would keep more: checked):
    suppression chains crossing tile boundaries, crowded random boxes with tied scores,
    ties and identical boxes, padding between, an empty image."""
    gen = torch.Generator().manual_seed(tile)
    crowded = _random_boxes(150, gen, spread=30.0, size=20.0)
    images = _chain_images()[:2] + [
        (crowded, (torch.rand(150, generator=gen) * 10).round() / 10),
        _tie_images()[0][0],
        _image(torch.zeros(0, 4).tolist(), []),
    ]
    ranked, valid = _ranked(*_padded(images, seed=tile))
    whole = _fixed_point(ranked, valid)
    assert not torch.equal(_per_tile(ranked, valid, tile), whole)  # tiles meet earlier tiles
    expected = whole if limit is None else whole & (whole.cumsum(1) <= limit)
    assert torch.equal(greedy_nms_ranked(ranked, valid, 0.5, limit, tile=tile), expected)


def test_wider_lists_than_the_registers_hold_run_in_tiles():
    """Lists of more than MAX_BOXES boxes (an image's whole candidate list) run the tiled
    kernel in tiles of TILE: crowded boxes, so that the first tile keeps fewer than the limit
    and the walk goes on into the next, and a second image that reaches its limit early."""
    gen = torch.Generator().manual_seed(21)
    width = MAX_BOXES + 52
    crowded = _random_boxes(width, gen, spread=10.0, size=10.0)
    spread = _random_boxes(width, gen, spread=4000.0, size=30.0)
    scores = torch.rand(2, width, generator=gen)
    ranked, valid = _ranked(torch.stack([crowded, spread]), scores, torch.ones(2, width) > 0)
    whole = _fixed_point(ranked, valid)
    limit = 300
    first_tile_kept = whole[:, :TILE].sum(1)
    assert first_tile_kept[0] < limit <= first_tile_kept[1]
    expected = whole & (whole.cumsum(1) <= limit)
    assert torch.equal(greedy_nms_ranked(ranked, valid, 0.5, limit), expected)


@pytest.mark.parametrize("limit", [0, 1, 7, 30, 1000])
def test_a_limit_stops_the_walk_at_the_limit_th_kept_box(limit):
    """With a limit the kernel keeps each image's first `limit` kept boxes of the whole walk
    (rank order) and nothing after; batched_greedy_nms gives the same on both backends (the
    torch one cuts its whole result). Images: suppression chains (every other box kept) and
    random boxes, padding between them."""
    images = _chain_images()[:2] + [_random_boxes_image(200, seed=3)]
    ranked, valid = _ranked(*_padded(images))
    whole = _fixed_point(ranked, valid)
    keep = greedy_nms_ranked(ranked, valid, 0.5, limit)
    assert torch.equal(keep, whole & (whole.cumsum(1) <= limit))
    assert keep.sum(1).max() == min(limit, int(whole.sum(1).max()))
    boxes, scores, valid = _padded(images)
    both = [batched_greedy_nms(boxes, scores, valid, 0.5, backend=b, limit=limit) for b in BOTH]
    assert torch.equal(both[0], both[1])
    assert torch.equal(both[0].sum(1), (whole & (whole.cumsum(1) <= limit)).sum(1))


BOTH = ("torch", "triton")


def _random_boxes_image(count, seed):
    gen = torch.Generator().manual_seed(seed)
    return _image(_random_boxes(count, gen).tolist(), torch.rand(count, generator=gen).tolist())
