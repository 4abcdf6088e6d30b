"""The batched host post-processing must give torchvision's RetinaNet detections exactly."""

import pytest
import torch

from retinaflow.model.architectures import anchor_generator, build_retinanet
from retinaflow.postprocess import flatten_map, level_anchors, postprocess_detections


def _random_head_maps(n, num_classes, map_sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    a = 9
    class_maps = [
        torch.randn(n, a * num_classes, h, w, generator=gen) * 1.5 - 3.5 for h, w in map_sizes
    ]
    box_maps = [torch.randn(n, a * 4, h, w, generator=gen) * 0.6 for h, w in map_sizes]
    box_maps[0][0, 2, 0, 0] = 50.0  # a dw far past the clamp
    return class_maps, box_maps


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


@pytest.mark.parametrize(
    "arch,num_classes,size,seed",
    [("demo", 6, 320, 0), ("demo", 6, 320, 1), ("resnext50_32x4d_fpn", 264, 256, 2)],
)
def test_matches_torchvision_postprocess(arch, num_classes, size, seed):
    model = build_retinanet(arch, num_classes, size).eval()
    map_sizes = [
        (size // s + (size % s > 0), size // s + (size % s > 0)) for s in (8, 16, 32, 64, 128)
    ]
    class_maps, box_maps = _random_head_maps(3, num_classes, map_sizes, seed)
    original_sizes = [(480, 640), (333, 250), (size, size)]
    anchors = level_anchors(anchor_generator(arch), (size, size), map_sizes)

    ours = postprocess_detections(class_maps, box_maps, anchors, (size, size), original_sizes)
    reference = _torchvision_detections(model, class_maps, box_maps, (size, size), original_sizes)

    for mine, ref in zip(ours, reference, strict=True):
        assert len(ref["scores"]) > 50  # the case is not trivial
        assert torch.equal(mine["labels"], ref["labels"])
        assert torch.equal(mine["scores"], ref["scores"])
        assert torch.equal(mine["boxes"], ref["boxes"])


def test_keeps_at_most_detections_per_img_and_thresholds():
    from retinaflow.postprocess import PostprocessSettings

    map_sizes = [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    class_maps, box_maps = _random_head_maps(2, 6, map_sizes, 5)
    anchors = level_anchors(anchor_generator("demo"), (320, 320), map_sizes)
    settings = PostprocessSettings(score_thresh=0.2, detections_per_img=40)
    dets = postprocess_detections(
        class_maps, box_maps, anchors, (320, 320), [(320, 320)] * 2, settings
    )
    for d in dets:
        assert len(d["scores"]) == 40
        assert (d["scores"] > 0.2).all()
        assert (d["scores"][:-1] >= d["scores"][1:]).all()
