"""The batched host post-processing must give torchvision's RetinaNet detections exactly."""

import pytest
import torch

from retinaflow import postprocess
from retinaflow.model.architectures import anchor_generator, build_retinanet
from retinaflow.postprocess import (
    PostprocessSettings,
    flatten_map,
    level_anchors,
    postprocess_detections,
)

from .configs import postprocess_settings


def _random_head_maps(n, num_classes, map_sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    a = 9
    class_maps = [
        torch.randn(n, a * num_classes, h, w, generator=gen) * 1.5 - 3.5 for h, w in map_sizes
    ]
    box_maps = [torch.randn(n, a * 4, h, w, generator=gen) * 0.6 for h, w in map_sizes]
    box_maps[0][0, 2, 0, 0] = 50.0  # a dw far past the clamp
    return class_maps, box_maps


def _map_sizes(size):
    return [(size // s + (size % s > 0),) * 2 for s in (8, 16, 32, 64, 128)]


def _settings_of(model) -> PostprocessSettings:
    """The settings of the torchvision RetinaNet that the detections are compared with."""
    return PostprocessSettings(
        score_thresh=model.score_thresh,
        topk_candidates=model.topk_candidates,
        nms_thresh=model.nms_thresh,
        detections_per_img=model.detections_per_img,
    )


def _torchvision_detections(model, class_maps, box_maps, image_size, original_sizes):
    """RetinaNet.forward's eval branch, fed with the given head outputs."""
    num_classes = model.head.classification_head.num_classes
    cls = torch.cat([flatten_map(m, num_classes) for m in class_maps], 1)
    reg = torch.cat([flatten_map(m, 4) for m in box_maps], 1)
    counts = [m.shape[2] * m.shape[3] * 9 for m in class_maps]
    anchors = torch.cat(
        level_anchors(model.anchor_generator, image_size, [m.shape[2:] for m in class_maps])
    )
    split = {
        "cls_logits": list(cls.split(counts, 1)),
        "bbox_regression": list(reg.split(counts, 1)),
    }
    split_anchors = [list(anchors.split(counts))] * cls.shape[0]
    image_sizes = [image_size] * cls.shape[0]
    dets = model.postprocess_detections(split, split_anchors, image_sizes)
    return model.transform.postprocess(dets, image_sizes, original_sizes)


def _assert_identical(ours, reference):
    for mine, ref in zip(ours, reference, strict=True):
        assert torch.equal(mine["labels"], ref["labels"])
        assert torch.equal(mine["scores"], ref["scores"])
        assert torch.equal(mine["boxes"], ref["boxes"])


@pytest.mark.parametrize(
    "arch,num_classes,size,seed",
    [("demo", 6, 320, 0), ("demo", 6, 320, 1), ("resnext50_32x4d_fpn", 264, 256, 2)],
)
def test_matches_torchvision_postprocess(arch, num_classes, size, seed):
    model = build_retinanet(arch, num_classes, size).eval()
    map_sizes = _map_sizes(size)
    class_maps, box_maps = _random_head_maps(3, num_classes, map_sizes, seed)
    original_sizes = [(480, 640), (333, 250), (size, size)]
    anchors = level_anchors(anchor_generator(arch), (size, size), map_sizes)

    ours = postprocess_detections(
        class_maps, box_maps, anchors, (size, size), original_sizes, _settings_of(model)
    )
    reference = _torchvision_detections(model, class_maps, box_maps, (size, size), original_sizes)

    for ref in reference:
        assert len(ref["scores"]) > 50  # the case is not trivial
    _assert_identical(ours, reference)


def test_keeps_at_most_detections_per_img_and_thresholds():
    map_sizes = [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    class_maps, box_maps = _random_head_maps(2, 6, map_sizes, 5)
    anchors = level_anchors(anchor_generator("demo"), (320, 320), map_sizes)
    settings = postprocess_settings(score_thresh=0.2, detections_per_img=40)
    dets = postprocess_detections(
        class_maps, box_maps, anchors, (320, 320), [(320, 320)] * 2, settings
    )
    for d in dets:
        assert len(d["scores"]) == 40
        assert (d["scores"] > 0.2).all()
        assert (d["scores"][:-1] >= d["scores"][1:]).all()


# --- heavy ties, as int8-quantised maps have them ---------------------------------------------

STEP = 0.25  # logits and deltas on a coarse grid: a few dozen distinct values per map


def _split_logit(low=2.5, high=4.0):
    """A logit whose score torch's CPU sigmoid computes one ulp apart in its vector lanes and
    its scalar tail loop (a plain one where they agree on every probe)."""
    probe = torch.arange(low, high, 1 / 1024)
    padded = torch.cat([probe, probe.new_zeros(-len(probe) % 64)])
    vector = torch.cat([torch.sigmoid(p) for p in padded.split(64)])[: len(probe)]
    scalar = torch.sigmoid(probe.repeat_interleave(2)[::2])
    split = probe[vector != scalar]
    return float(split[len(split) // 2]) if len(split) else 3.0


def _set_at(class_map, position, value):
    """Set the logit at `position` of torchvision's flattened [H*W*A*K] order (all images)."""
    _, channels, h, w = class_map.shape
    location, channel = divmod(position, channels)
    class_map[:, channel, location // w, location % w] = value


def _tied_head_maps(n, num_classes, map_sizes, seed, plateau_locations):
    """Quantised maps with ties wherever they decide something.

    Image 0 is dense (~15% of scores above 0.05; at 800 past torch.topk's heap regime): one
    logit over the first classes of the first rows and at the ends of the chunks that
    torch.sigmoid gives its threads (where its scalar tail loop scores it one ulp off the
    vector lanes); distinct logits that share a score, ulp apart near 2 and saturated (16.5
    to 17.25 all score 0.99999994). Thousands of equal scores thus straddle each level's
    top-k and the 300 cut. Boxes: identical ones (zero deltas on the first rows), ones a
    grid step apart, a dw past the clamp. Image 1 is sparse (a few thousand candidates a
    level), image 2 has no score above the threshold, image 3 is dense again.
    """
    gen = torch.Generator().manual_seed(seed)
    a = 9
    plateau = _split_logit()
    class_maps, box_maps = [], []
    for h, w in map_sizes:
        shape = (n, a * num_classes, h, w)
        logits = torch.randn(shape, generator=gen) * 1.5 - 4.5
        logits = (logits / STEP).round().clamp(-128, 127) * STEP
        logits[:, : 2 * num_classes // 3, : min(h, plateau_locations // w + 1)] = plateau
        numel = a * num_classes * h * w
        for end in (numel // 2, numel):  # chunk ends, for 1 or 2 threads
            for position in range(max(0, end - 40), min(numel, end + 8)):
                _set_at(logits, position, plateau)
        jitter = torch.tensor([2.0, 2.0000002, 2.0000005, 16.5, 17.0, 17.25])
        picks = jitter[torch.randint(0, len(jitter), shape, generator=gen)]
        logits = torch.where(torch.rand(shape, generator=gen) < 0.002, picks, logits)
        if n > 1:
            keep = torch.rand(logits[1].shape, generator=gen) < 20000 / logits[1].numel()
            logits[1] = torch.where(keep, logits[1], -9.0)
        if n > 2:
            logits[2] = -20.0
        deltas = torch.randn(n, a * 4, h, w, generator=gen) * 0.5
        deltas = (deltas / (STEP / 2)).round() * (STEP / 2)
        deltas[:, :, : max(1, h // 4)] = 0.0
        class_maps.append(logits)
        box_maps.append(deltas)
    box_maps[0][0, 2, 0, 0] = 50.0
    return class_maps, box_maps


def _check_ties(ours, reference, class_maps):
    """The case is as meant (in the dense image the P3 top-1000 and the 300 cut fall among
    equal scores; the empty image has no detections), and the detections are torchvision's."""
    scores = torch.sigmoid(flatten_map(class_maps[0][:1], class_maps[0].shape[1] // 9))
    top = scores.flatten().topk(1000).values
    assert (scores == top[-1]).sum() > (top == top[-1]).sum() > 10
    dense = reference[0]["scores"]
    assert len(dense) == 300
    assert (dense == dense[-1]).sum() > 10
    assert len(reference[1]["scores"]) > 0
    assert len(reference[2]["scores"]) == 0
    assert ours[2]["boxes"].shape == (0, 4)
    _assert_identical(ours, reference)


@pytest.mark.parametrize("scan", ["literal", "blocks", "blocks-uncounted"])
def test_matches_torchvision_with_tied_demo_maps(scan, monkeypatch):
    if scan != "literal":  # the large-level path, on the small maps
        monkeypatch.setattr(postprocess, "LITERAL_MAX", 0)
    if scan == "blocks-uncounted":
        monkeypatch.setattr(postprocess, "COUNT_MAX", 0)
    size, num_classes = 320, 6
    model = build_retinanet("demo", num_classes, size).eval()
    map_sizes = _map_sizes(size)
    class_maps, box_maps = _tied_head_maps(4, num_classes, map_sizes, 3, plateau_locations=400)
    original_sizes = [(480, 640), (4000, 3000), (333, 250), (size, size)]
    anchors = level_anchors(anchor_generator("demo"), (size, size), map_sizes)

    ours = postprocess_detections(
        class_maps, box_maps, anchors, (size, size), original_sizes, _settings_of(model)
    )
    reference = _torchvision_detections(model, class_maps, box_maps, (size, size), original_sizes)
    _check_ties(ours, reference, class_maps)


def test_matches_torchvision_with_tied_mlperf_maps():
    size, num_classes = 800, 264
    model = build_retinanet("resnext50_32x4d_fpn", num_classes, size).eval()
    map_sizes = _map_sizes(size)
    class_maps, box_maps = _tied_head_maps(4, num_classes, map_sizes, 4, plateau_locations=30)
    original_sizes = [(3000, 4000), (4000, 3000), (640, 480), (size, size)]
    anchors = level_anchors(anchor_generator("resnext50_32x4d_fpn"), (size, size), map_sizes)

    ours = postprocess_detections(
        class_maps, box_maps, anchors, (size, size), original_sizes, _settings_of(model)
    )
    reference = _torchvision_detections(model, class_maps, box_maps, (size, size), original_sizes)
    _check_ties(ours, reference, class_maps)


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.3])  # 21 k, 107 k, 640 k candidates
@pytest.mark.parametrize("count_max", [0, 1 << 22])
@pytest.mark.parametrize("first_block", [1, 1_000_000, 10**9])  # segments: 1, 4, all 9
def test_block_scan_picks_torchvision_topk_among_ties(
    fraction, count_max, first_block, monkeypatch
):
    """However the level is cut into blocks, and whether the candidates are counted first,
    the scan hands torch.topk what torchvision does: the same choice and order among equal
    scores across the k boundary, below and past 64 * k candidates (nth_element or heap)."""
    monkeypatch.setattr(postprocess, "FIRST_BLOCK", first_block)
    monkeypatch.setattr(postprocess, "COUNT_MAX", count_max)
    settings = postprocess_settings()  # the config's: MLPerf's values
    gen = torch.Generator().manual_seed(6)
    logits = (torch.randn(9 * 264, 30 * 30, generator=gen) * 0.5 / STEP).round() * STEP
    logits = torch.where(torch.rand(logits.shape, generator=gen) < fraction, logits, -9.0)

    positions, scores = postprocess._select_blocks(logits, settings)
    expected = postprocess._select_literal(logits, 264, settings)
    assert (expected[1] == expected[1][-1]).sum() > 10  # the cut falls among ties
    assert torch.equal(positions, expected[0])
    assert torch.equal(scores, expected[1])
