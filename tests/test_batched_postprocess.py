"""The batched post-processing (any device) must give the host post-processing's detections
exactly on the CPU: labels, scores, boxes and their order, ties included."""

import numpy as np
import pytest
import torch

from retinaflow import batched_postprocess
from retinaflow.batched_postprocess import _nms_one_call, _nms_per_image
from retinaflow.batched_postprocess import batched_postprocess_detections as batched
from retinaflow.detector import Detector
from retinaflow.model.architectures import anchor_generator
from retinaflow.postprocess import level_anchors, postprocess_detections

from .configs import postprocess_settings
from .test_postprocess import _map_sizes, _random_head_maps, _tied_head_maps

ORIGINALS = [(480, 640), (4000, 3000), (333, 250), (320, 320)]


def _assert_equal(ours, reference):
    assert len(ours) == len(reference)
    for mine, ref in zip(ours, reference, strict=True):
        assert torch.equal(mine["labels"], ref["labels"])
        assert torch.equal(mine["scores"], ref["scores"])
        assert torch.equal(mine["boxes"], ref["boxes"])


def _both(class_maps, box_maps, size, settings, originals):
    anchors = level_anchors(anchor_generator("demo"), (size, size), _map_sizes(size))
    args = (class_maps, box_maps, anchors, (size, size), originals, settings)
    return batched(*args), postprocess_detections(*args)


@pytest.mark.parametrize("n,seed", [(1, 0), (3, 1)])
def test_matches_host_on_random_maps(n, seed):
    class_maps, box_maps = _random_head_maps(n, 6, _map_sizes(320), seed)
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:n])
    assert all(len(r["scores"]) == 300 for r in reference)
    _assert_equal(ours, reference)


# k = 100: the dense images (~13 k candidates at P3) are past 64 * k, torch.topk's heap regime
@pytest.mark.parametrize("topk", [1000, 100])
@pytest.mark.parametrize("halvings", [10, 0])  # blocks of locations, or one per level
def test_matches_host_with_tied_maps(topk, halvings, monkeypatch):
    """Quantised maps (test_postprocess._tied_head_maps): dense, sparse, empty and dense
    images in one batch, thousands of equal scores across the top-k and the 300 cut."""
    monkeypatch.setattr(batched_postprocess, "BLOCK_HALVINGS", halvings)
    class_maps, box_maps = _tied_head_maps(4, 6, _map_sizes(320), 3, plateau_locations=400)
    ours, reference = _both(
        class_maps, box_maps, 320, postprocess_settings(topk_candidates=topk), ORIGINALS
    )
    assert [len(r["scores"]) for r in reference] == [300, 300, 0, 300]
    assert ours[2]["boxes"].shape == (0, 4)
    _assert_equal(ours, reference)


def test_matches_host_in_heap_regime_at_800():
    """The MLPerf k (1000) past 64 * k candidates: the dense images' P3 (100 x 100 x 54) has
    ~80 k scores above the threshold; the cut rises in its later blocks."""
    size = 800
    class_maps, box_maps = _tied_head_maps(4, 6, _map_sizes(size), 3, plateau_locations=400)
    logits = class_maps[0].reshape(4, class_maps[0].shape[1], -1)
    cuts, heap = batched_postprocess._candidate_cuts(logits, postprocess_settings())
    assert heap.tolist() == [True, False, False, True]
    assert (cuts[0].amax() > cuts[0].amin()) and (cuts[1] == cuts[1, 0]).all()
    originals = [(3000, 4000), (4000, 3000), (640, 480), (size, size)]
    ours, reference = _both(class_maps, box_maps, size, postprocess_settings(), originals)
    top = reference[0]["scores"]
    assert len(top) == 300 and (top == top[-1]).sum() > 10
    _assert_equal(ours, reference)


def test_all_below_threshold():
    class_maps, box_maps = _random_head_maps(2, 6, _map_sizes(320), 7)
    class_maps = [torch.full_like(m, -20.0) for m in class_maps]
    ours, reference = _both(class_maps, box_maps, 320, postprocess_settings(), ORIGINALS[:2])
    assert all(d["boxes"].shape == (0, 4) and d["labels"].dtype == torch.int64 for d in ours)
    _assert_equal(ours, reference)


def _integer_boxes(n, per_image, distinct, seed):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, 60, (n * per_image, 2), generator=gen).float()
    boxes = torch.cat([xy, xy + torch.randint(1, 30, xy.shape, generator=gen)], 1)
    scores = torch.randperm(n * per_image, generator=gen).float() / (n * per_image)
    if not distinct:
        scores = (scores * 20).floor() / 20
    labels = torch.randint(0, 5, (n * per_image,), generator=gen)
    image = torch.arange(n).repeat_interleave(per_image)
    return image, boxes, scores, labels


# 300 boxes an image: torchvision's coordinate trick; 3000: its NMS per class
@pytest.mark.parametrize("per_image", [300, 3000])
def test_one_nms_call_matches_per_image_nms_when_exact(per_image):
    """One NMS call for the batch equals torchvision's per image where its offsets add
    exactly (integer boxes) and no two scores tie (the CPU nms sorts unstably)."""
    image, boxes, scores, labels = _integer_boxes(3, per_image, True, 8)
    settings = postprocess_settings()
    kept = _nms_per_image(image, boxes, scores, labels, 3, settings)
    assert len(kept) > 100
    assert torch.equal(_nms_one_call(image, boxes, scores, labels, 3, settings), kept)


def test_one_nms_call_differs_among_ties():
    """Documented limit: with tied scores, one call orders them otherwise (here it does)."""
    image, boxes, scores, labels = _integer_boxes(3, 3000, False, 8)
    settings = postprocess_settings()
    kept = _nms_per_image(image, boxes, scores, labels, 3, settings)
    assert not torch.equal(_nms_one_call(image, boxes, scores, labels, 3, settings), kept)


def test_detector_postprocesses_tensors_batched_and_arrays_on_the_host():
    class_maps, box_maps = _tied_head_maps(4, 6, _map_sizes(320), 3, plateau_locations=400)
    detector = Detector(None, "demo", 320, postprocess_settings(), on_device="exact")
    tensors = detector.postprocess_maps(class_maps + box_maps, ORIGINALS)
    arrays = detector.postprocess_maps([m.numpy() for m in class_maps + box_maps], ORIGINALS)
    for mine, host in zip(tensors, arrays, strict=True):
        assert mine.keys() == host.keys()
        for key, value in mine.items():
            assert isinstance(value, np.ndarray) and np.array_equal(value, host[key])
