"""Post-processing where a GPU runner's maps are: torchvision's RetinaNet steps on the whole
batch, in the device's own kernels, with a handful of launches per level and nothing but the
final detections copied to the host.

Per level, one torch.topk over each image's logits (in the maps' own [A, K, H*W] layout),
then the sigmoid and the score threshold on those k, the BoxCoder decode and the clip, all
for the batch at once; then per image torchvision's batched_nms and the best
`detections_per_img`. Taking the top k logits before the threshold keeps exactly the scores
torchvision keeps (sigmoid is monotonic, so the k best logits give the k best scores), and
the rows go through the same ops as torchvision's, so the detections are torchvision's on
that device wherever no two candidate scores tie. Among equal scores the order is the
device's topk and NMS kernels' (torchvision's own is its CPU kernels' on the CPU, its CUDA
kernels' on a GPU); `batched_postprocess` reproduces the CPU order when that matters.

NMS is greedy in score order, so the first `detections_per_img` boxes it keeps depend only on
the boxes up to the last of them: NMS over an image's NMS_PREFIX best candidates that keeps at
least that many gives the whole list's result (with the whole list's class offsets, as
batched_nms adds them), and only where it keeps fewer does the whole list run. An image has up
to 5 * topk_candidates (5,000) candidates, and NMS compares every pair.
"""

from __future__ import annotations

import torch
from torchvision.ops import boxes as box_ops

from .postprocess import BOX_CODER, PostprocessSettings, original_scale

NMS_PREFIX = 1000  # an image's best candidates NMS sees first (all if they keep too few)


def _level_candidates(class_map, box_map, anchors, image_size, settings):
    """(image, boxes, scores, labels) of one level: per image the best `topk_candidates`
    scores above the threshold, decoded and clipped, best first within each image."""
    n, channels, h, w = class_map.shape
    num_anchors = box_map.shape[1] // 4
    num_classes = channels // num_anchors
    logits = class_map.reshape(n, -1)  # [N, A*K*H*W]: anchor, class, location
    k = min(settings.topk_candidates, logits.shape[1])
    top, index = logits.topk(k, dim=1)
    scores = torch.sigmoid(top.float())
    image, rank = (scores > settings.score_thresh).nonzero().unbind(1)
    index = index[image, rank]
    anchor, rest = index // (num_classes * h * w), index % (num_classes * h * w)
    label, location = rest // (h * w), rest % (h * w)
    deltas = box_map.reshape(n, num_anchors, 4, h * w)[image, anchor, :, location].float()
    boxes = BOX_CODER.decode_single(deltas, anchors[location * num_anchors + anchor])
    boxes = box_ops.clip_boxes_to_image(boxes, image_size)
    return image, boxes, scores[image, rank], label


def device_postprocess_detections(
    class_maps: list[torch.Tensor],
    box_maps: list[torch.Tensor],
    anchors: list[torch.Tensor],
    image_size: tuple[int, int],
    original_sizes: list[tuple[int, int]],
    settings: PostprocessSettings,
) -> list[dict[str, torch.Tensor]]:
    """Per image `boxes` (xyxy, original pixels), `scores`, `labels`, best first, on the
    maps' device. `anchors`: postprocess.level_anchors, on that device."""
    n = class_maps[0].shape[0]
    device = class_maps[0].device
    levels = [
        _level_candidates(c, b, a, image_size, settings)
        for c, b, a in zip(class_maps, box_maps, anchors, strict=True)
    ]
    image, boxes, scores, labels = (torch.cat(p) for p in zip(*levels, strict=True))
    # images kept apart: torchvision's batched_nms per image (its own class offsets)
    order = image.argsort(stable=True)
    image, boxes, scores, labels = image[order], boxes[order], scores[order], labels[order]
    counts = torch.bincount(image, minlength=n).tolist()
    scale = original_scale(original_sizes, image_size, device)
    detections, start = [], 0
    for i, count in enumerate(counts):
        rows = slice(start, start + count)
        keep = _image_nms(boxes[rows], scores[rows], labels[rows], settings) + start
        detections.append(
            {"boxes": boxes[keep] * scale[i], "scores": scores[keep], "labels": labels[keep]}
        )
        start += count
    return detections


def _image_nms(boxes, scores, labels, settings: PostprocessSettings) -> torch.Tensor:
    """torchvision's batched_nms on one image, its best `detections_per_img` (the module
    docstring: the NMS_PREFIX best first). The class offsets are batched_nms' own, from the
    largest coordinate of all the image's boxes."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    shifted = boxes + (labels.to(boxes) * (boxes.max() + 1))[:, None]
    if len(scores) > NMS_PREFIX:
        best = scores.topk(NMS_PREFIX).indices
        keep = best[box_ops.nms(shifted[best], scores[best], settings.nms_thresh)]
        if len(keep) >= settings.detections_per_img:
            return keep[: settings.detections_per_img]
    keep = box_ops.nms(shifted, scores, settings.nms_thresh)
    return keep[: settings.detections_per_img]
