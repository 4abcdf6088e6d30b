"""Post-processing where a GPU runner's maps are: torchvision's RetinaNet steps on the whole
batch, in fixed shapes ([images, candidates]), with a few launches per level, one host sync
per batch (none per image) and nothing but the final detections copied to the host.

Per level, each image's best `topk_candidates` logits (radix_topk.top_k_levels: a radix select
in the maps' own memory layout, NCHW's [A, K, H*W] order or, as a channels-last head leaves
them, torchvision's own [H*W, A, K] order, read without a copy; the int8 head's maps, views
of the interior of padded grids, are read in place, the frame left out), then the sigmoid and the
score threshold on those k (a mask: the shapes stay fixed), the BoxCoder decode and the
clip, all for the batch at once. Taking the top k logits before the threshold keeps exactly
the scores torchvision keeps (sigmoid is monotonic, so the k best logits give the k best
scores), and the rows go through the same ops as torchvision's.

NMS then runs for all images at once (batched_nms.batched_greedy_nms): per image the result
of torchvision's `batched_nms` with its coordinate trick (boxes shifted by label * (the
image's largest coordinate + 1)), computed as its CPU kernel computes it, and in its order:
scores descending, equal scores in candidate order (by level, then by rank in the level).
Where no two candidate scores tie, the detections are thus torchvision's on that device (but
for an IoU within an ulp of the threshold, which its CUDA kernel rounds its own way:
batched_nms). Among equal logits at a level's k-th place, the top-k takes the first in the
map's memory order, on every device and run; torchvision takes its topk kernel's choice, so
where scores tie only the multiset of scores is promised; `batched_postprocess` reproduces
the CPU's choice when that matters.

NMS is greedy in score order, so the first `detections_per_img` boxes it keeps depend only on
the boxes up to the last of them: NMS over an image's NMS_PREFIX best candidates that keeps at
least that many gives the whole list's result (with the whole list's class offsets, as
batched_nms adds them), and only where it keeps fewer does the whole list run. An image has up
to 5 * topk_candidates (5,000) candidates, and NMS compares every pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import boxes as box_ops

from .batched_nms import batched_greedy_nms
from .postprocess import BOX_CODER, PostprocessSettings, original_scale
from .radix_topk import MIN_SUB, Frame, top_k_levels

NMS_PREFIX = 1000  # an image's best candidates NMS sees first (all if they keep too few)


@dataclass
class BatchDetections:
    """A batch's detections on the device, padded to the most any image kept: boxes
    [N, D, 4] (xyxy, original pixels), scores [N, D] and labels [N, D], best first; image i
    holds its first counts[i]."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    counts: list[int]

    def per_image(self) -> list[dict[str, torch.Tensor]]:
        """Each image's detections as views (no copy)."""
        return [
            {"boxes": self.boxes[i, :c], "scores": self.scores[i, :c], "labels": self.labels[i, :c]}
            for i, c in enumerate(self.counts)
        ]

    def to_host(self) -> list[dict[str, np.ndarray]]:
        """numpy detections per image, from one copy (one sync) of packed_rows, split on
        the host."""
        host = packed_rows(self.boxes, self.scores, self.labels).cpu().numpy()
        dtypes = numpy_dtypes(self.boxes, self.scores, self.labels)
        return [unpacked_rows(host[i, :count], dtypes) for i, count in enumerate(self.counts)]


FIELDS = ("boxes", "scores", "labels")


def packed_rows(boxes, scores, labels) -> torch.Tensor:
    """Detections as one [..., 6] tensor in the boxes' dtype, for one copy to the host:
    xyxy, score, label (float32 holds the scores, and labels, class indices far below 2^24,
    exactly)."""
    return torch.cat([boxes, scores[..., None].to(boxes), labels[..., None].to(boxes)], -1)


def numpy_dtypes(boxes, scores, labels) -> dict[str, np.dtype]:
    """Each field's numpy dtype, for unpacked_rows."""
    tensors = (boxes, scores, labels)
    return {k: torch.empty(0, dtype=t.dtype).numpy().dtype for k, t in zip(FIELDS, tensors)}


def unpacked_rows(rows: np.ndarray, dtypes: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    """One image's [count, 6] host rows of packed_rows -> its fields, each contiguous in its
    own dtype."""
    return {
        "boxes": np.ascontiguousarray(rows[:, :4], dtype=dtypes["boxes"]),
        "scores": np.ascontiguousarray(rows[:, 4], dtype=dtypes["scores"]),
        "labels": np.ascontiguousarray(rows[:, 5], dtype=dtypes["labels"]),
    }


def _flat_logits(class_map: torch.Tensor) -> tuple[torch.Tensor, bool, Frame | None]:
    """[N, L] logits in the map's memory order, a view where the map is contiguous in either
    layout or the interior of padded grids (the int8 head's maps); whether that order is
    channels-last (location, anchor, class) rather than NCHW's (anchor, class, location);
    and the padded grids' Frame (L counts the frame), or None."""
    n = class_map.shape[0]
    nhwc = class_map.permute(0, 2, 3, 1)
    if nhwc.is_contiguous():
        return nhwc.reshape(n, -1), True, None
    padded = _padded_rows(class_map)
    if padded is not None:
        rows, frame = padded
        return rows, True, frame
    return class_map.reshape(n, -1), False, None


def _padded_rows(class_map: torch.Tensor) -> tuple[torch.Tensor, Frame] | None:
    """([N, L] the padded grids, their Frame) where `class_map` views their interior
    (channels-last, a one-pixel frame, images one after another: triton_conv's padded flat
    layout) and the top-k can read them (pixels of MIN_SUB values or more); else None."""
    n, channels, h, w = class_map.shape
    frame = Frame(h + 2, w + 2, channels)
    strides = (frame.length, frame.cols * channels, channels, 1)
    start = class_map.storage_offset() - (frame.cols + 1) * channels
    stored = class_map.untyped_storage().nbytes() // class_map.element_size()
    fits = start >= 0 and start + n * frame.length <= stored
    if class_map.permute(0, 2, 3, 1).stride() != strides or not fits or channels < MIN_SUB:
        return None
    return class_map.as_strided((n, frame.length), (frame.length, 1), start), frame


def _deltas(box_map: torch.Tensor, image, anchor, location) -> torch.Tensor:
    """[..., 4] float32 box deltas of the given rows, read in the box map's own layout (any
    strides: a padded grid's interior too)."""
    n, channels, h, w = box_map.shape
    num_anchors = channels // 4
    if box_map.permute(0, 2, 3, 1).is_contiguous():
        rows = box_map.permute(0, 2, 3, 1).reshape(n, h * w, num_anchors, 4)
        return rows[image, location, anchor].float()
    if box_map.is_contiguous():
        return box_map.reshape(n, num_anchors, 4, h * w)[image, anchor, :, location].float()
    pixels = box_map.permute(0, 2, 3, 1).unflatten(3, (num_anchors, 4))  # a view
    return pixels[image, location // w, location % w, anchor].float()


def _level_rows(class_map, box_map, index, channels_last, frame):
    """(box deltas [N, k, 4] float32, anchor rows [N, k] into the level's anchors, labels
    [N, k]) of one level's candidates at flat positions `index` (per image, best first;
    with a Frame, positions in the padded grids)."""
    n, channels, h, w = class_map.shape
    num_anchors = box_map.shape[1] // 4
    num_classes = channels // num_anchors
    if channels_last:  # index = location * (A*K) + anchor * K + class
        location, rest = index // channels, index % channels
        if frame is not None:  # a pixel of the padded grid -> of the interior
            location = frame.interior_pixel(location)
        anchor, label = rest // num_classes, rest % num_classes
    else:  # index = anchor * (K*H*W) + class * (H*W) + location
        anchor, rest = index // (num_classes * h * w), index % (num_classes * h * w)
        label, location = rest // (h * w), rest % (h * w)
    image = torch.arange(n, device=index.device)[:, None].expand_as(index)
    return _deltas(box_map, image, anchor, location), location * num_anchors + anchor, label


def _candidates(class_maps, box_maps, anchors, best, layouts, frames, image_size, settings):
    """(boxes [N, C, 4], scores [N, C], labels [N, C], valid [N, C]) of all levels' best
    candidates, level after level: decoded and clipped in one pass for the five levels (the
    same element-wise ops as level by level, a fifth of the launches); `valid`: the score is
    above the threshold (the other rows' boxes are zeros)."""
    deltas, anchor_rows, labels, first = [], [], [], 0
    for c, b, a, (_, index), channels_last, frame in zip(
        class_maps, box_maps, anchors, best, layouts, frames, strict=True
    ):
        level_deltas, rows, label = _level_rows(c, b, index, channels_last, frame)
        deltas.append(level_deltas)
        anchor_rows.append(rows + first)  # into the levels' anchors one after another
        labels.append(label)
        first += len(a)
    scores = torch.sigmoid(torch.cat([top for top, _ in best], 1).float())
    valid = scores > settings.score_thresh
    rows = torch.cat(anchor_rows, 1)
    boxes = BOX_CODER.decode_single(
        torch.cat(deltas, 1).reshape(-1, 4), torch.cat(anchors)[rows.reshape(-1)]
    )
    boxes = box_ops.clip_boxes_to_image(boxes, image_size).view(*rows.shape, 4)
    boxes = torch.where(valid[..., None], boxes, 0.0)
    return boxes, scores, torch.cat(labels, 1), valid


def device_postprocess_batch(
    class_maps: list[torch.Tensor],
    box_maps: list[torch.Tensor],
    anchors: list[torch.Tensor],
    image_size: tuple[int, int],
    original_sizes: list[tuple[int, int]],
    settings: PostprocessSettings,
) -> BatchDetections:
    """The batch's detections (BatchDetections), best first, on the maps' device.
    `anchors`: postprocess.level_anchors, on that device."""
    logits, layouts, frames = zip(*(_flat_logits(c) for c in class_maps), strict=True)
    best = top_k_levels(list(logits), settings.topk_candidates, frames=list(frames))
    boxes, scores, labels, valid = _candidates(
        class_maps, box_maps, anchors, best, layouts, frames, image_size, settings
    )
    rows, counts = nms_rows(boxes, scores, labels, valid, settings)
    scale = original_scale(original_sizes, image_size, boxes.device)
    return BatchDetections(
        boxes.gather(1, rows[..., None].expand(-1, -1, 4)) * scale[:, None],
        scores.gather(1, rows),
        labels.gather(1, rows),
        counts,
    )


def device_postprocess_detections(*args, **kwargs) -> list[dict[str, torch.Tensor]]:
    """device_postprocess_batch's detections per image: `boxes` (xyxy, original pixels),
    `scores`, `labels`, best first, on the maps' device."""
    return device_postprocess_batch(*args, **kwargs).per_image()


def nms_rows(boxes, scores, labels, valid, settings: PostprocessSettings):
    """([N, D] rows, counts): per image the candidates (columns of these [N, C] tensors, in
    candidate order) that torchvision's batched_nms (coordinate trick) keeps on its valid
    ones, the first `detections_per_img`, best first; image i's first counts[i] rows are
    real, the rest padding. All images at once, one host sync."""
    n, width = scores.shape
    if width == 0:
        return torch.zeros(n, 0, dtype=torch.int64, device=scores.device), [0] * n
    order = scores.masked_fill(~valid, -torch.inf).sort(dim=1, descending=True, stable=True)
    order = order.indices  # by score, equal scores in candidate order, the invalid last
    boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4))
    scores, labels, valid = scores.gather(1, order), labels.gather(1, order), valid.gather(1, order)
    shifted = _class_offsets(boxes, labels, valid)
    prefix = min(NMS_PREFIX, width)
    first = torch.zeros_like(valid)
    everyone = list(range(n))
    first[:, :prefix] = _first_kept(shifted, scores, valid, everyone, prefix, settings)
    kept, candidates = torch.stack([first.sum(1), valid.sum(1)]).tolist()  # the sync
    short = [
        i for i in everyone if candidates[i] > prefix and kept[i] < settings.detections_per_img
    ]
    if short:
        first[short] = _first_kept(shifted, scores, valid, short, width, settings)
        kept = first.sum(1).tolist()
    most = max(kept, default=0)
    # the kept columns first, in rank order (a stable sort of "not kept")
    rows = (~first).to(torch.uint8).sort(dim=1, stable=True).indices[:, :most]
    return order.gather(1, rows), kept


def _class_offsets(boxes, labels, valid) -> torch.Tensor:
    """batched_nms' coordinate trick per image: boxes + label * (the largest coordinate of
    all that image's (valid) candidates + 1), in the same float32 ops as torchvision's."""
    largest = boxes.amax(2).masked_fill(~valid, -torch.inf).amax(1)
    largest = torch.where(valid.any(1), largest, 0.0)  # no candidates: no offsets needed
    return boxes + (labels.to(boxes) * (largest[:, None] + 1))[..., None]


def _first_kept(shifted, scores, valid, images: list[int], width: int, settings):
    """Keep mask [len(images), width]: for each of `images`, the rows among its `width`
    best that NMS on those keeps, only the first `detections_per_img`."""
    return batched_greedy_nms(
        shifted[images, :width],
        scores[images, :width],
        valid[images, :width],
        settings.nms_thresh,
        limit=settings.detections_per_img,
    )
