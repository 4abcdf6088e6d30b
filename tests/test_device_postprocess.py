"""The device post-processing (a GPU runner's maps, where they are) runs torchvision's steps
in the device's own kernels. On the CPU it must give the host post-processing's detections
on maps whose candidate scores do not tie, and the same detections as a set where they do."""

import functools

import numpy as np
import pytest
import torch
import torchvision
from torchvision.ops import boxes as box_ops

from retinaflow import device_postprocess
from retinaflow.batched_nms import batched_greedy_nms, threshold_below
from retinaflow.device_postprocess import (
    _flat_logits,
    device_postprocess_batch,
    device_postprocess_detections,
    nms_rows,
)
from retinaflow.model.architectures import anchor_generator
from retinaflow.postprocess import level_anchors, postprocess_detections
from retinaflow.radix_topk import top_k_levels

from .configs import postprocess_settings
from .test_postprocess import _map_sizes, _random_head_maps, _tied_head_maps

ORIGINALS = [(480, 640), (4000, 3000), (333, 250), (320, 320)]
# The host path scores each logit as torch.sigmoid does over the whole map, where a few
# positions per thread chunk take the scalar loop (std::exp), one ulp from the vector lanes
# (postprocess.py); the device path calls sigmoid (and exp in decoding) on the candidates
# alone. Scores and boxes may thus differ by an ulp or two: 4 ulps of float32 (2**-21
# relative) bound that and are far below any difference a wrong row or box would make.
ULPS = 2.0**-21


def _both(class_maps, box_maps, size, settings, originals):
    anchors = level_anchors(anchor_generator("demo"), (size, size), _map_sizes(size))
    args = (class_maps, box_maps, anchors, (size, size), originals, settings)
    return device_postprocess_detections(*args), postprocess_detections(*args)


def test_equals_the_host_where_no_scores_tie():
    class_maps, box_maps = _random_head_maps(3, 6, _map_sizes(320), 5)
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:3])
    for mine, ref in zip(ours, reference, strict=True):
        assert len(ref["scores"]) == 300  # every image fills its 300: the cut is tested
        assert torch.equal(mine["labels"], ref["labels"])
        torch.testing.assert_close(mine["scores"], ref["scores"], rtol=ULPS, atol=0)
        torch.testing.assert_close(mine["boxes"], ref["boxes"], rtol=ULPS, atol=1e-4)


def test_tied_scores_give_the_same_detections_as_a_set():
    """Quantised maps with thousands of ties: which of the equal scores fill the last places
    of a top-k or of the 300 is the kernels' choice, so compare what cannot depend on it:
    the count, and the scores in order (a multiset of values); the empty image stays empty."""
    class_maps, box_maps = _tied_head_maps(4, 6, _map_sizes(320), 3, plateau_locations=400)
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS)
    assert [len(r["scores"]) for r in reference] == [len(m["scores"]) for m in ours]
    assert ours[2]["boxes"].shape == (0, 4) and ours[2]["labels"].dtype == torch.int64
    for mine, ref in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine["scores"], ref["scores"], rtol=ULPS, atol=0)


def test_all_below_threshold_is_empty():
    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 7)
    class_maps = [torch.full_like(m, -20.0) for m in class_maps]
    ours, _ = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:2])
    assert all(d["boxes"].shape == (0, 4) and d["scores"].numel() == 0 for d in ours)


def test_detector_takes_the_device_path_for_tensors():
    """A runner that hands torch tensors (maps on its device) gets the device path by
    default; numpy maps keep the host path. On maps without ties both agree (above)."""
    from retinaflow.detector import Detector

    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 11)
    detector = Detector(None, "demo", 320, postprocess_settings())
    assert detector.device_postprocess is device_postprocess_batch
    tensors = detector.postprocess_maps(class_maps + box_maps, ORIGINALS[:2])
    arrays = detector.postprocess_maps([m.numpy() for m in class_maps + box_maps], ORIGINALS[:2])
    for mine, host in zip(tensors, arrays, strict=True):
        assert (mine["labels"] == host["labels"]).all()
        torch.testing.assert_close(
            torch.from_numpy(mine["scores"]), torch.from_numpy(host["scores"]), rtol=ULPS, atol=0
        )


@pytest.mark.parametrize("prefix", [50, 400, 100_000])
def test_nms_on_the_best_candidates_first_gives_the_whole_lists_result(prefix, monkeypatch):
    """NMS over an image's `prefix` best candidates is the whole list's NMS when it keeps 300
    or more (greedy NMS decides its first 300 from the boxes before the 300th kept); 50
    keeps fewer and must fall back to the whole list, 100,000 is more than there are."""
    monkeypatch.setattr(device_postprocess, "NMS_PREFIX", prefix)
    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 5)
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:2])
    for mine, ref in zip(ours, reference, strict=True):
        assert len(ref["scores"]) == 300
        assert torch.equal(mine["labels"], ref["labels"])
        torch.testing.assert_close(mine["boxes"], ref["boxes"], rtol=ULPS, atol=1e-4)


@pytest.mark.parametrize("seed", [5, 6])
def test_channels_last_maps_give_the_same_detections(seed):
    """A channels-last head's maps (NHWC memory) are read in place, in their own order, and
    give the NCHW maps' detections where no scores tie."""
    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), seed)
    last = [m.contiguous(memory_format=torch.channels_last) for m in class_maps + box_maps]
    logits, channels_last, frame = _flat_logits(last[0])
    assert channels_last and frame is None
    assert logits.data_ptr() == last[0].data_ptr()  # a view, no copy
    nchw, _ = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:2])
    nhwc, _ = _both(last[:5], last[5:], 320, postprocess_settings(), ORIGINALS[:2])
    for mine, ref in zip(nhwc, nchw, strict=True):
        assert len(ref["scores"]) == 300
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(mine[key], ref[key])


def _framed(maps, garbage):
    """Each map as the int8 head hands it over: the NCHW view of the interior of a padded
    flat buffer (triton_conv.PaddedShape), whose frame and margins hold `garbage`."""
    from retinaflow.triton_conv import PaddedShape

    views = []
    for m in maps:
        n, channels, height, width = m.shape
        shape = PaddedShape(n, height, width)
        buf = torch.full((shape.rows, channels), garbage, dtype=m.dtype)
        shape.interior(buf).copy_(m.permute(0, 2, 3, 1))
        views.append(shape.interior(buf).permute(0, 3, 1, 2))
    return views


def test_padded_grids_are_read_in_place_without_their_frame():
    """The int8 head's maps (views of padded grids' interiors) are read where they are, the
    frame left out: the same detections as the dense maps, bit for bit, though the frame
    holds logits above every real one (here the torch ops; the Triton passes below)."""
    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 5)
    framed = _framed(class_maps + box_maps, 30.0)
    logits, channels_last, frame = _flat_logits(framed[0])
    assert channels_last and frame is not None and logits.shape[1] == frame.length
    assert logits.untyped_storage().data_ptr() == framed[0].untyped_storage().data_ptr()
    dense, _ = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:2])
    padded, _ = _both(framed[:5], framed[5:], 320, postprocess_settings(), ORIGINALS[:2])
    for mine, ref in zip(padded, dense, strict=True):
        assert len(ref["scores"]) == 300
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(mine[key], ref[key])
    # a view of some other memory layout is not taken for padded grids (read as NCHW)
    assert _flat_logits(class_maps[0][:, :, 1:, 1:])[2] is None


# Batched NMS against torchvision's CPU nms, which is the reference: kept indices equal, in
# the same order, on the cases where an approximation would show.


def test_torchvision_nms_takes_equal_scores_in_index_order():
    """The order batched_nms promises is torchvision's CPU kernel's, a stable sort (its
    nms_kernel.cpp: scores.sort(stable=true, descending=true)): pinned here."""
    boxes = torch.arange(3000.0)[:, None] * 10 + torch.tensor([0.0, 0.0, 5.0, 5.0])
    scores = (torch.arange(3000) % 7 // 3).float()  # runs of equal scores, interleaved
    expected = scores.sort(descending=True, stable=True).indices
    assert torch.equal(torchvision.ops.nms(boxes, scores, 0.5), expected)


def _iou32(a, b) -> np.float32:
    """torchvision's IoU of two boxes, each operation rounded to float32 (nms_kernel.cpp)."""
    a, b = np.float32(a), np.float32(b)
    w = max(np.float32(0), min(a[2], b[2]) - max(a[0], b[0]))
    h = max(np.float32(0), min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / (_area(a) + _area(b) - inter)


def _area(box) -> np.float32:
    return (box[2] - box[0]) * (box[3] - box[1])


def _ulp(value: float, direction: float) -> float:
    """The float32 next to `value` towards `direction`."""
    return float(np.nextafter(np.float32(value), np.float32(direction)))


def _padded(images, seed=0):
    """[B, P, 4] boxes, [B, P] scores and valid from per-image (boxes, scores): each image's
    entries in order at random positions, between padding that would change the result were
    it not marked invalid (copies of the image's boxes scored above them all)."""
    gen = torch.Generator().manual_seed(seed)
    width = max(len(s) for _, s in images) + 3
    boxes = torch.zeros(len(images), width, 4)
    scores = torch.full((len(images), width), 2.0)
    valid = torch.zeros(len(images), width, dtype=torch.bool)
    for b, (image_boxes, image_scores) in enumerate(images):
        if len(image_scores):
            boxes[b] = image_boxes[torch.arange(width) % len(image_scores)]
        where = torch.randperm(width, generator=gen)[: len(image_scores)].sort().values
        boxes[b, where], scores[b, where], valid[b, where] = image_boxes, image_scores, True
    return boxes, scores, valid


def _assert_torchvision_kept(images, threshold=0.5, backend="auto"):
    """batched_greedy_nms on the images as one padded batch keeps what torchvision.ops.nms
    keeps on each, in its order (score descending, stably); returns torchvision's."""
    boxes, scores, valid = _padded(images)
    keep = batched_greedy_nms(boxes, scores, valid, threshold, backend=backend)
    references = []
    for b in range(len(images)):
        where = valid[b].nonzero().squeeze(1)
        reference = where[torchvision.ops.nms(boxes[b, where], scores[b, where], threshold)]
        order = scores[b].sort(descending=True, stable=True).indices
        assert torch.equal(order[keep[b, order]], reference)
        references.append([where.tolist().index(r) for r in reference.tolist()])
    return references


def _image(boxes, scores):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return boxes, torch.tensor(scores, dtype=torch.float32)


def _tie_images():
    """Images of equal scores and identical boxes, and what torchvision keeps of each."""
    same = [[1.0, 1.0, 5.0, 6.0]]
    images = [
        _image(same * 4 + [[20.0, 20.0, 30.0, 30.0]] * 2, [0.7] * 6),
        _image(same * 3 + [[2.0, 1.0, 5.0, 6.0]], [0.3, 0.9, 0.9, 0.9]),
        _image([[3.0, 3.0, 3.0, 8.0]] * 3, [0.5] * 3),  # no area: IoU 0/0, all kept
        _image([[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]] * 3, [0.6] * 6),
    ]
    return images, [[0, 4], [1], [0, 1, 2], [0, 1]]


def test_batched_nms_on_ties_and_identical_boxes():
    images, expected = _tie_images()
    assert _assert_torchvision_kept(images) == expected


# Two boxes whose IoU is 0.5 plus an ulp with the union summed as torchvision's kernels sum
# it, (area_a + area_b) - inter, and exactly 0.5 summed as area_a + (area_b - inter).
ROUNDED_OVER = (
    [1064.7301025390625, 18.526840209960938, 1143.904052734375, 107.40206909179688],
    [1086.6759033203125, 18.526840209960938, 1179.1864013671875, 107.40206909179688],
)


def _threshold_images():
    """Pairs of boxes whose IoU is exactly 0.5 in float32 (not over it: both kept), one ulp
    over (suppressed), one ulp under (kept); equal scores with either box first. The images
    and what torchvision keeps of each."""
    a, b = (np.float32(box) for box in ROUNDED_OVER)
    inter, area_a, area_b = (a[2] - b[0]) * (a[3] - a[1]), _area(a), _area(b)
    assert inter / (area_a + (area_b - inter)) == np.float32(0.5)
    pairs = {
        "at": ([0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0], 0.5),
        "at, other rounding": ([0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, _ulp(1.0, 2.0)], 0.5),
        "under": ([0.0, 0.0, 2.0, 1.0], [0.0, 0.0, _ulp(1.0, 0.0), 1.0], _ulp(0.5, 0.0)),
        "over": ([0.0, 0.0, 3.0, 1.0], [0.0, 0.0, _ulp(1.5, 2.0), 1.0], _ulp(0.5, 1.0)),
        "over by the union's rounding": (*ROUNDED_OVER, _ulp(0.5, 1.0)),
    }
    images = []
    for a, b, iou in pairs.values():
        assert _iou32(a, b) == np.float32(iou) and _iou32(b, a) == np.float32(iou)
        images += [_image([a, b], [0.9, 0.8]), _image([b, a], [0.9, 0.8])]
        images += [_image([a, b], [0.4, 0.4]), _image([b, a], [0.4, 0.4])]
    return images, [[0, 1]] * 12 + [[0]] * 8


def test_batched_nms_at_the_threshold():
    images, expected = _threshold_images()
    assert _assert_torchvision_kept(images) == expected


def test_batched_nms_compares_with_the_threshold_in_double():
    """torchvision's CPU kernel compares a float IoU with the double threshold: an IoU of
    float32(0.3), above 0.3, is suppressed at 0.3, not kept as a float32 comparison would."""
    a, b = [0.0, 0.0, 10.0, 1.0], [0.0, 0.0, 3.0, 1.0]
    assert _iou32(a, b) == np.float32(0.3) and float(np.float32(0.3)) > 0.3
    assert threshold_below(0.3, torch.float32) < 0.3 < float(np.float32(0.3))
    assert threshold_below(0.5, torch.float32) == 0.5
    assert _assert_torchvision_kept([_image([a, b], [0.9, 0.8])], threshold=0.3) == [[0]]


def _chain_images():
    """A suppresses B, B would suppress C (but is gone), C is kept: down a chain of 60 boxes
    every other one is kept (forwards, backwards, and a chain of 3)."""
    chain = [[3.0 * i, 0.0, 3.0 * i + 10.0, 10.0] for i in range(60)]
    falling = [1.0 - i / 100 for i in range(60)]
    return [_image(chain, falling), _image(chain[::-1], falling), _image(chain[:3], falling[:3])]


def test_batched_nms_follows_suppression_chains():
    """Down the chains far more fixed-point steps than one convergence check covers."""
    kept = _assert_torchvision_kept(_chain_images())
    assert kept[0] == list(range(0, 60, 2)) and kept[2] == [0, 2]


def test_batched_nms_with_empty_images_and_a_batch_of_one():
    one = _image([[0.0, 0.0, 4.0, 4.0], [1.0, 0.0, 4.0, 4.0]], [0.2, 0.1])
    empty = _image(torch.zeros(0, 4).tolist(), [])
    assert _assert_torchvision_kept([one]) == [[0]]
    assert _assert_torchvision_kept([empty, one, empty]) == [[], [0], []]
    nothing = batched_greedy_nms(
        torch.zeros(2, 0, 4), torch.zeros(2, 0), torch.zeros(2, 0) > 0, 0.5
    )
    assert nothing.shape == (2, 0)


def _random_boxes(count, gen, spread=60.0, size=60.0):
    corner = torch.rand(count, 2, generator=gen) * spread
    return torch.cat([corner, corner + 1 + torch.rand(count, 2, generator=gen) * size], 1)


def test_batched_nms_on_large_random_images():
    """3,000 crowded boxes an image with quantised (tied) scores, and images of other sizes."""
    gen = torch.Generator().manual_seed(3)
    images = []
    for count in (3000, 1000, 17, 3000):
        scores = (torch.rand(count, generator=gen) * 40).round() / 40
        images.append((_random_boxes(count, gen), scores))
    _assert_torchvision_kept(images)


# _nms_per_image: the device path's NMS stage against torchvision's batched_nms (its coordinate
# trick, as the device path promises) on each image's candidates.


def _candidates(counts, num_classes, seed, levels=5):
    """Flat (image, boxes, scores, labels) as the levels leave them: per level, per image,
    best first; crowded boxes of few classes, quantised (tied) scores."""
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for _ in range(levels):
        for i, count in enumerate(counts):
            m = count // levels
            scores = ((torch.rand(m, generator=gen) * 30).round() / 30).sort(descending=True)
            labels = torch.randint(num_classes, (m,), generator=gen)
            parts.append((torch.full((m,), i), _random_boxes(m, gen), scores.values, labels))
    return (torch.cat(p) for p in zip(*parts, strict=True))


def _nms_per_image(image, boxes, scores, labels, n: int, settings):
    """nms_rows on flat candidate lists (image index, boxes, scores, labels), as the tests
    build them: per image of the n, the indices into these lists that it keeps, best first."""
    counts = torch.bincount(image, minlength=n)
    width = int(counts.max()) if len(image) else 0
    order = image.sort(stable=True).indices  # by image, in list order
    start = counts.cumsum(0) - counts
    column = torch.arange(len(image)) - start[image[order]]
    slot = image[order] * width + column

    def padded(values, fill):
        out = values.new_full((n * width, *values.shape[1:]), fill)
        out[slot] = values[order]
        return out.view(n, width, *values.shape[1:])

    valid = padded(torch.ones_like(image, dtype=torch.bool), False)
    rows, kept = nms_rows(
        padded(boxes, 0.0), padded(scores, 0.0), padded(labels, 0), valid, settings
    )
    flat = padded(torch.arange(len(image)), -1)
    return [flat[i].gather(0, rows[i, :c]) for i, c in enumerate(kept)]


def _assert_batched_nms_kept(image, boxes, scores, labels, n, settings):
    ours = _nms_per_image(image, boxes, scores, labels, n, settings)
    for i in range(n):
        where = (image == i).nonzero().squeeze(1)
        reference = box_ops._batched_nms_coordinate_trick(
            boxes[where], scores[where], labels[where], settings.nms_thresh
        )
        assert torch.equal(ours[i], where[reference[: settings.detections_per_img]])
    return ours


@pytest.mark.parametrize(
    "counts,num_classes",
    [
        ([3000, 0, 1500, 0], 3),  # images without candidates, between and last
        ([400, 3000], 264),  # many classes, overlapping across them
        ([600, 150, 35], 2),  # fewer than NMS_PREFIX (1000)
        ([2500], 4),  # a batch of one
        ([0, 0], 4),  # nothing at all
    ],
)
def test_nms_per_image_is_torchvision_batched_nms(counts, num_classes):
    candidates = _candidates(counts, num_classes, seed=len(counts) + num_classes)
    _assert_batched_nms_kept(*candidates, len(counts), postprocess_settings())


def test_nms_per_image_keeps_classes_apart():
    """One box in four classes, twice each: the class offsets keep one per class."""
    boxes = torch.tensor([[100.0, 200.0, 300.0, 400.0]]).repeat(8, 1)
    labels = torch.tensor([0, 3, 3, 7, 0, 250, 7, 250])
    scores = torch.tensor([0.9, 0.9, 0.8, 0.7, 0.7, 0.6, 0.6, 0.6])
    image = torch.zeros(8, dtype=torch.int64)
    ours = _assert_batched_nms_kept(image, boxes, scores, labels, 1, postprocess_settings())
    assert ours[0].tolist() == [0, 1, 3, 5]


def test_nms_per_image_falls_back_to_the_whole_list(monkeypatch):
    """An image whose NMS_PREFIX best keep fewer than detections_per_img runs its whole list
    (only that one); the other images keep their prefix's result."""
    monkeypatch.setattr(device_postprocess, "NMS_PREFIX", 100)
    widths = []
    first_kept = device_postprocess._first_kept
    monkeypatch.setattr(
        device_postprocess,
        "_first_kept",
        lambda *args: widths.append((args[3], args[4])) or first_kept(*args),
    )
    settings = postprocess_settings(detections_per_img=60)
    image, boxes, scores, labels = _candidates([1500, 500, 90], 2, seed=8)
    # image 0's best candidates on one spot, of one class: its prefix keeps a few of them
    crowded = (image == 0) & (scores >= 0.8)
    boxes[crowded] = torch.tensor([10.0, 10.0, 50.0, 50.0]) + boxes[crowded] / 100
    labels[crowded] = 0
    ours = _assert_batched_nms_kept(image, boxes, scores, labels, 3, settings)
    assert widths == [([0, 1, 2], 100), ([0], 1500)]
    assert [len(k) for k in ours] == [60, 60, 60]


def test_detections_reach_the_host_in_one_copy_unchanged():
    """Detector.detections_to_host packs a batch's detections into one tensor for one copy:
    every image's boxes, scores and labels come back equal, in their own dtypes, contiguous;
    an image without detections and an empty batch included. Labels up to 263 (MLPerf's
    largest class index) are exact in float32."""
    from retinaflow.detector import detections_to_host

    gen = torch.Generator().manual_seed(3)
    sizes = [5, 0, 300]
    detections = [
        {
            "boxes": torch.rand(k, 4, generator=gen) * 800,
            "scores": torch.rand(k, generator=gen),
            "labels": torch.randint(0, 264, (k,), generator=gen),
        }
        for k in sizes
    ]
    detections[2]["labels"][0] = 263
    host = detections_to_host(detections)
    assert [len(h["scores"]) for h in host] == sizes
    for got, want in zip(host, detections, strict=True):
        for key in ("boxes", "scores", "labels"):
            assert got[key].dtype == want[key].numpy().dtype
            assert got[key].flags["C_CONTIGUOUS"]
            assert np.array_equal(got[key], want[key].numpy())
    assert detections_to_host([]) == []


# padding rows are zero boxes: their IoU is 0 / 0 (NaN, never above the threshold), as in
# torchvision's kernels; numpy, running the NMS kernel here, warns of it
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_the_gpus_kernels_give_the_same_detections(monkeypatch):
    """On a GPU the levels' top-k is radix_topk's Triton passes (float16 maps) and the greedy
    NMS triton_nms's kernel; here both run in Triton's interpreter in the whole
    post-processing, tied maps included, and must give exactly the torch ops' detections
    (one selection rule: equal logits by position; NMS: torchvision's CPU kernel's)."""
    class_maps, box_maps = _tied_head_maps(2, 6, _map_sizes(160), 3, plateau_locations=100)
    maps = [m.half().contiguous(memory_format=torch.channels_last) for m in class_maps + box_maps]
    torch_ops, _ = _both(maps[:5], maps[5:], 160, postprocess_settings(), ORIGINALS[:2])
    monkeypatch.setattr(
        device_postprocess,
        "top_k_levels",
        functools.partial(top_k_levels, backend="triton", sub=64, group=4),
    )
    monkeypatch.setattr(
        device_postprocess,
        "batched_greedy_nms",
        functools.partial(device_postprocess.batched_greedy_nms, backend="triton"),
    )
    triton_passes, _ = _both(maps[:5], maps[5:], 160, postprocess_settings(), ORIGINALS[:2])
    # the int8 head's maps: padded grids read in place, their frame above every logit
    framed = _framed(maps, 30.0)
    in_place, _ = _both(framed[:5], framed[5:], 160, postprocess_settings(), ORIGINALS[:2])
    assert sum(len(d["scores"]) for d in torch_ops) > 300  # not two empty images
    for ours in (triton_passes, in_place):
        for mine, ref in zip(ours, torch_ops, strict=True):
            for key in ("boxes", "scores", "labels"):
                assert torch.equal(mine[key], ref[key])


def test_a_batchs_detections_reach_the_host_in_one_piece():
    """BatchDetections.to_host (the fast path's one copy) gives every image its first
    counts[i] rows, each field in its own dtype and contiguous, as per_image's views hold
    them; an image without detections included."""
    from retinaflow.device_postprocess import BatchDetections

    gen = torch.Generator().manual_seed(5)
    batch = BatchDetections(
        torch.rand(3, 300, 4, generator=gen) * 800,
        torch.rand(3, 300, generator=gen),
        torch.randint(0, 264, (3, 300), generator=gen),
        [5, 0, 300],
    )
    batch.labels[2, 299] = 263
    host = batch.to_host()
    for got, want in zip(host, batch.per_image(), strict=True):
        for key in ("boxes", "scores", "labels"):
            assert got[key].dtype == want[key].numpy().dtype
            assert got[key].flags["C_CONTIGUOUS"]
            assert np.array_equal(got[key], want[key].numpy())
    assert [len(h["scores"]) for h in host] == [5, 0, 300]
