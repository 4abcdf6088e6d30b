"""Post-processing of a whole batch where its head maps are (any torch device), for runners
whose maps stay on an accelerator: the steps of postprocess.py, batched across images.

Per level, on the maps' own [N, A*K, H*W] layout: a logit cut per image and block of
locations keeps a superset of what torch.topk needs (below), found with one comparison and
one nonzero for the whole batch; exact scores for those candidates only; decoding, clipping,
NMS and scaling for all images at once. Only the final detections leave the device.

Exactness (CPU, `nms="per_image"`): the detections equal postprocess.postprocess_detections'
(hence torchvision's) bit for bit, ties included, because each step hands the CPU kernels
what torchvision hands them:

- scores: postprocess._sigmoid_at, each candidate at its position in its image's level.
- top-k: torch.topk's order among equal scores depends on the list it gets (the scores above
  the threshold, in location, anchor, class order). Below 64 * k of them it takes the whole
  list: the cut is then the threshold's, and each image's list gets its own topk call. At or
  past 64 * k it heap-selects: the first k scores form the heap, a later one enters it only
  if above the k-th best before it. In a block of locations after the first k best logits
  of the earlier blocks, each with a score surely above the threshold, every score that can
  enter is above the sigmoid of the k-th of those logits (32 ulps of margin cover sigmoid's
  vector/scalar lanes), so the cut rises to the logit under that score. Scores under it
  never enter, so dropping them changes no step of the heap; the list is padded back into
  the regime with -inf, which never enters.
- decoding: BoxCoder.decode_single's ops row by row; torch.exp's lanes are those of the row
  in its own (image, level) call, as for sigmoid.
- NMS: per image, postprocess._batched_nms (torchvision's batched_nms, result for result).

One NMS call for the batch (`nms="one_call"`, the default off the CPU) cannot be exact, for
two reasons. To keep images and classes apart it adds offsets to the coordinates, and a
float32 sum rounds them (torchvision's coordinate trick rounds too, with smaller per-image
offsets; its per-class path, above 1000 boxes an image, not at all); no offset keeps every
coordinate exact, so an IoU within rounding of the threshold may be decided otherwise. And
the CPU nms kernel sorts the scores unstably, so the order among equal scores (which box
suppresses which, and the output order) depends on everything else in the call. It equals
the per-image result whenever the offset coordinates are exact (e.g. boxes on an integer
grid, offsets < 2**24) and no two boxes of an image share a score. Classes shift x and
images y, so the offsets stay near torchvision's own (K * (largest coordinate + 1)).

On the CPU the batched path is no faster than the host one (CPU runners keep the host
path); it is for devices, where the 10 maps need not be copied to the host.
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import boxes as box_ops

from .postprocess import (
    BOX_CODER,
    GRAIN_SIZE,
    HEAP_SELECT_FACTOR,
    PostprocessSettings,
    _batched_nms,
    _logit_above,
    _logit_below,
    _scalar_ranges,
    _sigmoid_at,
    original_scale,
)

BLOCK_HALVINGS = 10  # a level's blocks of locations: the first 1/1024 of them, then doubling
NMS_MODES = ("per_image", "one_call")


def _blocks(locations: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges of locations: a small first block, then each as large as all before."""
    edges = sorted({0, locations} | {locations >> j for j in range(1, BLOCK_HALVINGS + 1)})
    return list(zip(edges[:-1], edges[1:]))


def _logit_under(scores: torch.Tensor) -> torch.Tensor:
    """_logit_below on a tensor, rounded down to float32 (a cut for float32 logits)."""
    margin = scores.double() * (1 - 2.0**-19)
    logit = torch.log(margin) - torch.log1p(-margin)
    logit = torch.where(scores >= 1, math.inf, torch.where(scores <= 0, -math.inf, logit))
    cut = logit.float()
    return torch.where(cut.double() > logit, torch.nextafter(cut, cut.new_tensor(-math.inf)), cut)


def _candidate_cuts(logits: torch.Tensor, settings: PostprocessSettings):
    """([N, H*W] logit cuts, [N] heap): per image and location, every logit that torch.topk's
    list needs (module docstring) is above the cut; `heap`: the image surely has 64 * k
    scores above the threshold (torch.topk's heap regime), the only case where cuts rise."""
    n, _, locations = logits.shape
    k = settings.topk_candidates
    cuts = logits.new_full((n, locations), _logit_below(settings.score_thresh))
    sure = _logit_above(settings.score_thresh)
    heap = (logits > sure).flatten(1).sum(1) >= HEAP_SELECT_FACTOR * k
    if k <= 0 or not bool(heap.any()):  # one sync per level; then nothing more to scan
        return cuts, heap
    # scores surely above the threshold in every lane: their logits' scores are in the list
    safe = settings.score_thresh * (1 + 2.0**-18)
    best = logits.new_empty(n, 0)  # the k best logits of the blocks so far, per image
    for lo, hi in _blocks(locations):
        if best.shape[1] >= k:
            kth = torch.sigmoid(best[:, k - 1])
            raised = torch.maximum(_logit_under(kth), cuts[:, lo])
            cuts[:, lo:hi] = torch.where(heap & (kth > safe), raised, cuts[:, lo])[:, None]
        if hi < locations:
            block = logits[:, :, lo:hi].reshape(n, -1)
            best = torch.cat([best, block.topk(min(k, block.shape[1]), dim=1).values], 1)
            best = best.topk(min(k, best.shape[1]), dim=1).values
    return cuts, heap


def _level_candidates(class_map: torch.Tensor, settings: PostprocessSettings):
    """(image, position, score, heap) of one level: the scores above the threshold that
    torch.topk's lists need (a superset), by image then position (torchvision's flattened
    order: location, anchor, class), and `_candidate_cuts`' heap flags."""
    n, channels, h, w = class_map.shape
    numel = channels * h * w
    logits = class_map.reshape(n, channels, h * w)
    cuts, heap = _candidate_cuts(logits, settings)
    image, channel, location = (logits > cuts[:, None, :]).nonzero().unbind(1)
    values = logits[image, channel, location]
    positions = location * channels + channel
    order = (image * numel + positions).argsort()
    image, positions, values = image[order], positions[order], values[order]
    scores = _sigmoid_at(values, positions, numel)
    keep = scores > settings.score_thresh
    return image[keep], positions[keep], scores[keep], heap


def _topk_per_image(image, positions, scores, heap, settings: PostprocessSettings):
    """Per image, torchvision's torch.topk call on its list: (positions, scores) best first.
    A list cut in the heap regime is padded back into it with -inf; lists differ in length
    and below 64 * k torch.topk's order depends on the length, hence one call per image."""
    k = settings.topk_candidates
    heap_count = HEAP_SELECT_FACTOR * k
    counts = torch.bincount(image, minlength=len(heap)).tolist()
    out = []
    for cut, i_positions, i_scores in zip(
        heap.tolist(), positions.split(counts), scores.split(counts), strict=True
    ):
        if cut and i_scores.numel() < heap_count:
            i_scores = torch.cat(
                [i_scores, i_scores.new_full((heap_count - len(i_scores),), -math.inf)]
            )
        top, order = i_scores.topk(max(0, min(k, len(i_positions))))
        out.append((i_positions[order], top))
    return out


def _scalar_rows(counts: list[int], device) -> torch.Tensor:
    """Rows (of groups of `counts` rows, one after another) that torch.exp computes in its
    scalar loop when each group is its own call, as torchvision decodes each image's level."""
    tail = torch.zeros(sum(counts), dtype=torch.bool)
    start = 0
    for count in counts:
        for lo, hi in _scalar_ranges(count):
            tail[start + lo : start + hi] = True
        start += count
    return tail.to(device)


def _exp_in_lanes(x: torch.Tensor, scalar_rows: torch.Tensor) -> torch.Tensor:
    """torch.exp of [M, 1] `x`, each row as in its own group's call (`_scalar_rows`)."""
    flat = x.reshape(-1)
    padded = flat.new_zeros(-(-flat.numel() // 64) * 64)
    padded[: flat.numel()] = flat
    # pieces a multiple of the vector step and serial (< GRAIN_SIZE): all in vector lanes
    out = torch.cat([torch.exp(piece) for piece in padded.split(GRAIN_SIZE // 2)])
    out = out[: flat.numel()]
    tail = scalar_rows.nonzero().squeeze(1)
    out[tail] = torch.exp(flat[tail].repeat_interleave(2)[::2])  # strided: the scalar loop
    return out.view_as(x)


def _decode(rel_codes: torch.Tensor, anchors: torch.Tensor, scalar_rows: torch.Tensor):
    """BOX_CODER.decode_single(rel_codes, anchors), op for op, but torch.exp's lanes."""
    boxes = anchors.to(rel_codes.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = BOX_CODER.weights
    dx = rel_codes[:, 0::4] / wx
    dy = rel_codes[:, 1::4] / wy
    dw = torch.clamp(rel_codes[:, 2::4] / ww, max=BOX_CODER.bbox_xform_clip)
    dh = torch.clamp(rel_codes[:, 3::4] / wh, max=BOX_CODER.bbox_xform_clip)
    pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
    pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = _exp_in_lanes(dw, scalar_rows) * widths[:, None]
    pred_h = _exp_in_lanes(dh, scalar_rows) * heights[:, None]
    half = torch.tensor(0.5, dtype=pred_ctr_x.dtype, device=pred_w.device)
    c_to_c_h = half * pred_h
    c_to_c_w = half * pred_w
    corners = (
        pred_ctr_x - c_to_c_w,
        pred_ctr_y - c_to_c_h,
        pred_ctr_x + c_to_c_w,
        pred_ctr_y + c_to_c_h,
    )
    return torch.stack(corners, dim=2).flatten(1)


def candidate_detections(class_maps, box_maps, anchors, image_size, settings):
    """Every image's per-level top-k, decoded and clipped: (image, boxes, scores, labels),
    rows by image, then level, then rank (torchvision's input to NMS, image after image)."""
    n = class_maps[0].shape[0]
    parts = []
    for level, (class_map, box_map, level_anchor) in enumerate(
        zip(class_maps, box_maps, anchors, strict=True)
    ):
        class_map, box_map = class_map.float(), box_map.float()
        num_anchors = box_map.shape[1] // 4
        num_classes = class_map.shape[1] // num_anchors
        image, positions, scores, heap = _level_candidates(class_map, settings)
        per_image = _topk_per_image(image, positions, scores, heap, settings)
        counts = [len(p) for p, _ in per_image]
        positions = torch.cat([p for p, _ in per_image])
        scores = torch.cat([s for _, s in per_image])
        image = torch.repeat_interleave(
            torch.arange(n, device=positions.device),
            torch.tensor(counts, device=positions.device),
        )
        anchor_index = positions // num_classes  # torchvision's (location, anchor) row
        location, anchor = anchor_index // num_anchors, anchor_index % num_anchors
        deltas = box_map.reshape(n, num_anchors, 4, -1)
        boxes = _decode(
            deltas[image, anchor, :, location],
            level_anchor.to(positions.device)[anchor_index],
            _scalar_rows(counts, positions.device),
        )
        boxes = box_ops.clip_boxes_to_image(boxes, image_size)
        parts.append((image, torch.full_like(image, level), boxes, scores, positions % num_classes))
    image, level, boxes, scores, labels = (torch.cat(p) for p in zip(*parts, strict=True))
    order = (image * len(parts) + level).sort(stable=True).indices
    return image[order], boxes[order], scores[order], labels[order]


def _nms_per_image(image, boxes, scores, labels, n: int, settings) -> torch.Tensor:
    """Rows kept, image by image: torchvision's batched_nms per image (exact), best first."""
    counts = torch.bincount(image, minlength=n).tolist()
    kept, start = [], 0
    for count in counts:
        rows = slice(start, start + count)
        keep = _batched_nms(boxes[rows], scores[rows], labels[rows], settings.nms_thresh)
        kept.append(keep[: settings.detections_per_img] + start)
        start += count
    return torch.cat(kept)


def _nms_one_call(image, boxes, scores, labels, n: int, settings) -> torch.Tensor:
    """Rows kept, by image and best first: one nms call for the batch, classes shifted along
    x and images along y by the largest coordinate + 1, so that no two of them overlap."""
    if not boxes.numel():
        return image.new_empty(0)
    span = boxes.max() + 1
    shift = torch.stack([labels, image, labels, image], 1).to(boxes) * span
    keep = torch.ops.torchvision.nms(boxes + shift, scores, settings.nms_thresh)
    kept_image, order = image[keep].sort(stable=True)  # by image, best first within each
    keep = keep[order]
    counts = torch.bincount(kept_image, minlength=n)
    starts = counts.cumsum(0) - counts
    rank = torch.arange(len(keep), device=keep.device) - starts[kept_image]
    return keep[rank < settings.detections_per_img]


def batched_postprocess_detections(
    class_maps: list[torch.Tensor],
    box_maps: list[torch.Tensor],
    anchors: list[torch.Tensor],
    image_size: tuple[int, int],
    original_sizes: list[tuple[int, int]],
    settings: PostprocessSettings,
    nms: str | None = None,
) -> list[dict[str, torch.Tensor]]:
    """postprocess.postprocess_detections on the maps' device: per image `boxes` (xyxy,
    original pixels), `scores`, `labels`, best first, on that device.

    nms: "per_image" (exact; the CPU default) or "one_call" (the default elsewhere; see the
    module docstring).
    """
    n = class_maps[0].shape[0]
    device = class_maps[0].device
    nms = nms or ("per_image" if device.type == "cpu" else "one_call")
    if nms not in NMS_MODES:
        raise ValueError(f"nms must be one of {NMS_MODES}, not {nms!r}")
    image, boxes, scores, labels = candidate_detections(
        class_maps, box_maps, anchors, image_size, settings
    )
    run_nms = _nms_per_image if nms == "per_image" else _nms_one_call
    keep = run_nms(image, boxes, scores, labels, n, settings)
    scale = original_scale(original_sizes, image_size, device)
    image = image[keep]
    boxes, scores, labels = boxes[keep] * scale[image], scores[keep], labels[keep]
    counts = torch.bincount(image, minlength=n).tolist()
    return [
        {"boxes": b, "scores": s, "labels": label}
        for b, s, label in zip(
            boxes.split(counts), scores.split(counts), labels.split(counts), strict=True
        )
    ]
