# The previous version (commit 83f4550, src/retinaflow/device_postprocess.py), kept as it was: post_new.py
# times the new device post-processing against it on the same maps.
"""Post-processing where a GPU runner's maps are: torchvision's RetinaNet steps on the whole
batch, in the device's own kernels, with a handful of launches per level, a few host syncs
per batch (none per image) and nothing but the final detections copied to the host.

Per level, one torch.topk over each image's logits in the maps' own memory layout (NCHW: the
[A, K, H*W] order; channels-last, as a channels-last head leaves them: torchvision's own
[H*W, A, K] order, read without a copy), then the sigmoid and the score threshold on those k,
the BoxCoder decode and the clip, all for the batch at once. Taking the top k logits before
the threshold keeps exactly the scores torchvision keeps (sigmoid is monotonic, so the k best
logits give the k best scores), and the rows go through the same ops as torchvision's.

NMS then runs for all images at once (batched_nms.batched_greedy_nms): per image the result
of torchvision's `batched_nms` with its coordinate trick (boxes shifted by label * (the
image's largest coordinate + 1)), computed as its CPU kernel computes it, and in its order:
scores descending, equal scores in candidate order (by level, then by rank in the level).
Where no two candidate scores tie, the detections are thus torchvision's on that device (but
for an IoU within an ulp of the threshold, which its CUDA kernel rounds its own way:
batched_nms). Among equal scores, which ones a top-k takes is the device's topk's choice
(torchvision's is its CPU kernels' on the CPU, its CUDA kernels' on a GPU), so where scores
tie only the multiset of scores is promised; `batched_postprocess` reproduces the CPU's
choice when that matters.

NMS is greedy in score order, so the first `detections_per_img` boxes it keeps depend only on
the boxes up to the last of them: NMS over an image's NMS_PREFIX best candidates that keeps at
least that many gives the whole list's result (with the whole list's class offsets, as
batched_nms adds them), and only where it keeps fewer does the whole list run. An image has up
to 5 * topk_candidates (5,000) candidates, and NMS compares every pair.
"""

from __future__ import annotations

import torch
from torchvision.ops import boxes as box_ops

from old_nms import batched_greedy_nms
from retinaflow.postprocess import BOX_CODER, PostprocessSettings, original_scale

NMS_PREFIX = 1000  # an image's best candidates NMS sees first (all if they keep too few)


def _flat_logits(class_map: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """[N, A*K*H*W] logits in the map's memory order, a view where the map is contiguous in
    either layout, and whether that order is channels-last (location, anchor, class) rather
    than NCHW's (anchor, class, location)."""
    n = class_map.shape[0]
    if class_map.permute(0, 2, 3, 1).is_contiguous():
        return class_map.permute(0, 2, 3, 1).reshape(n, -1), True
    return class_map.reshape(n, -1), False


def _deltas(box_map: torch.Tensor, image, anchor, location) -> torch.Tensor:
    """[m, 4] float32 box deltas of the given rows, read in the box map's own layout."""
    n, channels, h, w = box_map.shape
    num_anchors = channels // 4
    if box_map.permute(0, 2, 3, 1).is_contiguous():
        rows = box_map.permute(0, 2, 3, 1).reshape(n, h * w, num_anchors, 4)
        return rows[image, location, anchor].float()
    return box_map.reshape(n, num_anchors, 4, h * w)[image, anchor, :, location].float()


def _level_candidates(class_map, box_map, anchors, image_size, settings):
    """(image, boxes, scores, labels) of one level: per image the best `topk_candidates`
    scores above the threshold, decoded and clipped, best first within each image."""
    _, channels, h, w = class_map.shape
    num_anchors = box_map.shape[1] // 4
    num_classes = channels // num_anchors
    logits, channels_last = _flat_logits(class_map)
    k = min(settings.topk_candidates, logits.shape[1])
    top, index = logits.topk(k, dim=1)
    scores = torch.sigmoid(top.float())
    image, rank = (scores > settings.score_thresh).nonzero().unbind(1)
    index = index[image, rank]
    if channels_last:  # index = location * (A*K) + anchor * K + class
        location, rest = index // channels, index % channels
        anchor, label = rest // num_classes, rest % num_classes
    else:  # index = anchor * (K*H*W) + class * (H*W) + location
        anchor, rest = index // (num_classes * h * w), index % (num_classes * h * w)
        label, location = rest // (h * w), rest % (h * w)
    deltas = _deltas(box_map, image, anchor, location)
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
    levels = [
        _level_candidates(c, b, a, image_size, settings)
        for c, b, a in zip(class_maps, box_maps, anchors, strict=True)
    ]
    image, boxes, scores, labels = (torch.cat(p) for p in zip(*levels, strict=True))
    kept = nms_per_image(image, boxes, scores, labels, n, settings)
    scale = original_scale(original_sizes, image_size, class_maps[0].device)
    return [
        {"boxes": boxes[keep] * scale[i], "scores": scores[keep], "labels": labels[keep]}
        for i, keep in enumerate(kept)
    ]


def nms_per_image(image, boxes, scores, labels, n: int, settings: PostprocessSettings):
    """Per image of the n: the candidates (indices into these lists) that torchvision's
    batched_nms (coordinate trick) keeps on that image's candidates in their order here, the
    first `detections_per_img`, best first; all images at once."""
    order = _best_first_by_image(image, scores)
    image, boxes, scores, labels = image[order], boxes[order], scores[order], labels[order]
    shifted = _class_offsets(boxes, labels, image, n)
    return [order[rows] for rows in _nms_rows(shifted, scores, image, n, settings)]


def _best_first_by_image(image: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The candidates' order by image, then score descending; equal scores stay in candidate
    order (both sorts stable), the order torchvision's CPU nms takes them in."""
    order = scores.sort(descending=True, stable=True).indices
    return order[image[order].sort(stable=True).indices]


def _class_offsets(boxes, labels, image, n: int) -> torch.Tensor:
    """batched_nms' coordinate trick per image: boxes + label * (the largest coordinate of
    all that image's candidates + 1), in the same float32 ops as torchvision's."""
    largest = boxes.new_full((n,), -torch.inf)
    largest.scatter_reduce_(0, image, boxes.amax(1), "amax")
    return boxes + (labels.to(boxes) * (largest[image] + 1))[:, None]


def _nms_rows(shifted, scores, image, n: int, settings: PostprocessSettings):
    """Per image the rows (of the candidates, sorted by `_best_first_by_image`) of its best
    `detections_per_img` after NMS, best first: NMS on the NMS_PREFIX best of every image
    at once, then on the whole lists of the images whose prefix kept too few."""
    counts = torch.bincount(image, minlength=n)
    start = counts.cumsum(0) - counts
    rank = torch.arange(len(image), device=image.device) - start[image]
    counts_host = counts.tolist()
    prefix = min(NMS_PREFIX, max(counts_host, default=0))
    everyone = list(range(n))
    rows = _first_kept(shifted, scores, image, rank, start, everyone, prefix, settings)
    short = [
        i
        for i in everyone
        if counts_host[i] > prefix and len(rows[i]) < settings.detections_per_img
    ]
    if short:
        width = max(counts_host[i] for i in short)
        whole = _first_kept(shifted, scores, image, rank, start, short, width, settings)
        for i, kept in zip(short, whole, strict=True):
            rows[i] = kept
    return rows


def _first_kept(shifted, scores, image, rank, start, images: list[int], width: int, settings):
    """For each of `images`: the rows that NMS on its `width` best candidates keeps, the
    first `detections_per_img`, best first (one host sync for their counts)."""
    slot = torch.full_like(start, -1)
    slot[images] = torch.arange(len(images), device=start.device)
    keep = _ranked_nms(shifted, scores, slot[image], rank, len(images), width, settings)
    first = keep & (keep.cumsum(1) <= settings.detections_per_img)
    taken = first.sum(1).tolist()
    rows = start[images][:, None] + torch.arange(width, device=start.device)
    return list(rows[first].split(taken))


def _ranked_nms(shifted, scores, slot, rank, n: int, width: int, settings):
    """Keep mask [n, width], by rank: NMS on the `width` best candidates of each image with
    a `slot` (0..n-1; -1: left out), all at once. The candidates left out go to a spare last
    row (a scatter, no host sync), which is dropped."""
    inside = (slot >= 0) & (rank < width)
    target = torch.where(inside, slot * width + rank, n * width)
    boxes = shifted.new_zeros(n * width + 1, 4)
    boxes[target] = shifted
    ranked_scores = scores.new_full((n * width + 1,), -torch.inf)
    ranked_scores[target] = scores
    valid = torch.zeros(n * width + 1, dtype=torch.bool, device=scores.device)
    valid[target] = inside
    return batched_greedy_nms(
        boxes[:-1].view(n, width, 4),
        ranked_scores[:-1].view(n, width),
        valid[:-1].view(n, width),
        settings.nms_thresh,
    )
