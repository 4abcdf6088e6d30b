"""Host post-processing of the 10 head maps, as MLPerf's reference (torchvision's RetinaNet):
sigmoid; per level keep scores > 0.05 and the top 1000; decode with the dw/dh clamp; clip to
the model input; class-wise NMS at 0.5; keep the best 300; scale boxes to each original image.

Batched over images: one top-k per level and one NMS call for the whole batch, so that a
batch costs a few tensor operations rather than a Python loop per image.
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
    generator: AnchorGenerator, image_size: tuple[int, int], map_sizes: list[tuple[int, int]]
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


def _batched_class_nms(boxes, scores, groups, iou_thresh: float) -> torch.Tensor:
    """NMS within each group (image x class) in one call: the coordinate-offset trick, in float64
    so that the offsets (up to ~1e8 for large batches) do not cost box precision."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.double()
    offsets = groups.double() * (boxes.max() + 1)
    return box_ops.nms(boxes + offsets[:, None], scores.double(), iou_thresh)


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
    all_boxes, all_scores, all_labels = [], [], []
    for class_map, box_map, level_anchor in zip(class_maps, box_maps, anchors, strict=True):
        num_classes = class_map.shape[1] // (box_map.shape[1] // 4)
        scores = torch.sigmoid(flatten_map(class_map, num_classes).float()).flatten(1)
        k = min(settings.topk_candidates, scores.shape[1])
        top_scores, top_idx = scores.topk(k, dim=1)
        anchor_idx = torch.div(top_idx, num_classes, rounding_mode="floor")
        deltas = flatten_map(box_map, 4).float()
        deltas = deltas.gather(1, anchor_idx[..., None].expand(-1, -1, 4))
        boxes = BOX_CODER.decode_single(deltas.reshape(-1, 4), level_anchor[anchor_idx.reshape(-1)])
        boxes = box_ops.clip_boxes_to_image(boxes, image_size).view(n, k, 4)
        all_boxes.append(boxes)
        all_scores.append(top_scores)
        all_labels.append(top_idx % num_classes)
    boxes, scores, labels = (
        torch.cat(all_boxes, 1),
        torch.cat(all_scores, 1),
        torch.cat(all_labels, 1),
    )
    image_idx = torch.arange(n, device=boxes.device)[:, None].expand_as(scores)

    keep = scores > settings.score_thresh
    boxes, scores, labels, image_idx = boxes[keep], scores[keep], labels[keep], image_idx[keep]
    kept = _batched_class_nms(boxes, scores, image_idx * num_classes + labels, settings.nms_thresh)
    # `kept` is sorted by score; a stable sort by image keeps that order within each image.
    kept = kept[torch.sort(image_idx[kept], stable=True).indices]
    per_image = torch.bincount(image_idx[kept], minlength=n).tolist()

    detections = []
    for i, idx in enumerate(kept.split(per_image)):
        idx = idx[: settings.detections_per_img]
        height, width = original_sizes[i]
        scale = torch.tensor(
            [width / image_size[1], height / image_size[0]] * 2, device=boxes.device
        )
        detections.append(
            {"boxes": boxes[idx] * scale, "scores": scores[idx], "labels": labels[idx]}
        )
    return detections
