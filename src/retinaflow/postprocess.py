"""Host post-processing of the 10 head maps, as MLPerf's reference (torchvision's RetinaNet):
sigmoid; per level keep scores > 0.05 and the top 1000; decode with the dw/dh clamp; clip to
the model input; class-wise NMS at 0.5; keep the best 300; scale boxes to each original image.

Fast where the maps are large (the MLPerf model at 800x800 scores 23.8 M anchor-classes at
P3): candidates are chosen on the logits, in the maps' own layout, above the threshold only,
and only they are decoded; NMS runs per image (a batched call compares boxes across images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import boxes as box_ops


@dataclass(frozen=True)
class PostprocessSettings:
    """MLPerf's values by default."""

    score_thresh: float = 0.05
    topk_candidates: int = 1000
    nms_thresh: float = 0.5
    detections_per_img: int = 300


BOX_CODER = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=math.log(1000.0 / 16))


def level_anchors(
    generator: AnchorGenerator,
    image_size: tuple[int, int],
    map_sizes: list[tuple[int, int]],
) -> list[torch.Tensor]:
    """Anchors [H_l*W_l*A, 4] per level, in the order of the flattened head maps."""
    images = ImageList(torch.zeros(1, 3, *image_size), [image_size])
    features = [torch.zeros(1, 1, h, w) for h, w in map_sizes]
    anchors = generator(images, features)[0]
    counts = [h * w * generator.num_anchors_per_location()[0] for h, w in map_sizes]
    return list(anchors.split(counts))


def flatten_map(head_map: torch.Tensor, channels_per_anchor: int) -> torch.Tensor:
    """[N, A*C, H, W] -> [N, H*W*A, C], torchvision's layout (location-major, then anchor)."""
    n, _, h, w = head_map.shape
    out = head_map.view(n, -1, channels_per_anchor, h, w).permute(0, 3, 4, 1, 2)
    return out.reshape(n, -1, channels_per_anchor)


def _class_nms(boxes, scores, labels, iou_thresh: float) -> torch.Tensor:
    """NMS within each class of one image in one call: the coordinate-offset trick, in float64
    so that the offsets (up to 264 classes x 801 px) cost no box precision."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.double()
    offsets = labels.double() * (boxes.max() + 1)
    return box_ops.nms(boxes + offsets[:, None], scores.double(), iou_thresh)


def _sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid of a few values, bit-equal to the same values inside a large map: torch's CPU
    kernel computes a short tail in scalar code, one ulp off its vectorised lanes, so pad."""
    count = logits.numel()
    padded = logits.new_zeros(-(-count // 64) * 64, dtype=torch.float32)
    padded[:count] = logits
    return torch.sigmoid(padded)[:count]


def _level_candidates(class_map, box_map, level_anchor, image_size, settings, logit_floor):
    """Per image of one level: (boxes, scores, labels) of its best candidates above the score
    threshold, best first, as torchvision selects them.

    Sigmoid is monotonic, so candidates are chosen on the logits in the maps' own layout
    [A*K, H, W]: no sigmoid and no permuted copy of the whole map (23.8 M scores at P3 for
    the MLPerf model at 800x800); only the chosen few are decoded.
    """
    n, _, h, w = class_map.shape
    num_anchors = box_map.shape[1] // 4
    num_classes = class_map.shape[1] // num_anchors
    logits = class_map.reshape(n, -1)
    deltas = box_map.reshape(n, num_anchors, 4, h * w)
    out = []
    for i in range(n):
        candidates = (logits[i] > logit_floor).nonzero().squeeze(1)
        k = min(settings.topk_candidates, candidates.numel())
        top_logits, order = logits[i][candidates].topk(k)
        index = candidates[order]
        channel, location = index // (h * w), index % (h * w)
        anchor, label = channel // num_classes, channel % num_classes
        boxes = BOX_CODER.decode_single(
            deltas[i][anchor, :, location].float(),
            level_anchor[location * num_anchors + anchor],  # torchvision's (h, w, a) order
        )
        boxes = box_ops.clip_boxes_to_image(boxes, image_size)
        out.append((boxes, _sigmoid(top_logits), label))
    return out


def postprocess_detections(
    class_maps: list[torch.Tensor],
    box_maps: list[torch.Tensor],
    anchors: list[torch.Tensor],
    image_size: tuple[int, int],
    original_sizes: list[tuple[int, int]],
    settings: PostprocessSettings = PostprocessSettings(),
) -> list[dict[str, torch.Tensor]]:
    """Detections per image: boxes (xyxy, original pixels), scores and labels, best first.

    class_maps/box_maps: the 5+5 head maps of a batch; anchors: `level_anchors` for the model
    input `image_size` (height, width); original_sizes: (height, width) of each image.
    """
    n = class_maps[0].shape[0]
    # a hair below logit(score_thresh): the exact test is on the sigmoid scores, below
    thresh = settings.score_thresh
    logit_floor = math.log(thresh / (1 - thresh)) - 1e-3 if 0 < thresh < 1 else -math.inf
    per_image = [[] for _ in range(n)]
    for level in zip(class_maps, box_maps, anchors, strict=True):
        for i, found in enumerate(_level_candidates(*level, image_size, settings, logit_floor)):
            per_image[i].append(found)
    detections = []
    for (height, width), found in zip(original_sizes, per_image, strict=True):
        boxes, scores, labels = (torch.cat(parts) for parts in zip(*found, strict=True))
        keep = scores > settings.score_thresh
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        # NMS per image: one call over the batch would compare every pair of boxes across
        # images too (quadratic in the batch; 8 dense images at 800x800 took ~1 s)
        kept = _class_nms(boxes, scores, labels, settings.nms_thresh)
        kept = kept[: settings.detections_per_img]
        scale = torch.tensor(
            [width / image_size[1], height / image_size[0]] * 2, device=boxes.device
        )
        detections.append(
            {"boxes": boxes[kept] * scale, "scores": scores[kept], "labels": labels[kept]}
        )
    return detections
