"""Host post-processing of the 10 head maps, as MLPerf's reference (torchvision's RetinaNet):
sigmoid; per level keep scores > 0.05 and the top 1000; decode with the dw/dh clamp; clip to
the model input; class-wise NMS at 0.5; keep the best 300; scale boxes to each original image.

The detections are torchvision's bit for bit (labels, scores, boxes and their order), ties
included, as int8-quantised maps have them by the thousand. Where scores tie, torchvision's
result is decided by the CPU kernels it calls, so this module calls the same ones on inputs
they cannot tell from torchvision's:

- scores: torch.sigmoid over each level's whole map, whose CPU kernel computes most elements
  in vector lanes (Sleef's exp) and the last `numel % 32` (AVX-512) of each thread's chunk in
  scalar code (std::exp), one ulp apart for ~6% of logits. `_sigmoid_at` gives each chosen
  logit the value of its own position in that map; distinct logits may also share one score.
- per-level top-k: torch.topk's order among equal scores depends on the whole list it is
  given (the scores above the threshold, in torchvision's order: location, anchor, class).
  At or past 64 * k scores it heap-selects: the first k form the heap and later ones count
  only if above the heap's minimum. `_select_blocks` hands it the same first k and every
  later score that could enter the heap, in the same order (padded to the same regime);
  below 64 * k it hands it the whole list.
- NMS: torchvision's `batched_nms` (float32; per class above 1000 boxes, the coordinate
  trick below), re-run here with the same kernel calls on the same inputs.
- decoding and scaling: the same ops on the same rows, in the same order and counts.

Fast where the maps are large (the MLPerf model at 800x800 scores 23.8 M anchor-classes at
P3): large levels are scanned in the maps' own layout, in blocks of locations, against a
threshold that rises to the running k-th best score, so that only a few thousand candidates
are scored, sorted and decoded; small levels take torchvision's own steps.
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
    """The config's postprocess section (config/config.yaml has MLPerf's values)."""

    score_thresh: float
    topk_candidates: int
    nms_thresh: float
    detections_per_img: int


BOX_CODER = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=math.log(1000.0 / 16))

GRAIN_SIZE = 32768  # at::internal::GRAIN_SIZE: elementwise CPU kernels split above it
HEAP_SELECT_FACTOR = 64  # torch.topk (CPU) heap-selects when k * 64 <= n, else nth_element
LITERAL_MAX = 1 << 19  # levels up to this many scores per image take torchvision's own steps
SEGMENT = 100  # locations (at least) per maximum in a large level's first pass
FIRST_BLOCK = 1  # logits in the first block of a large level (a segment at least; then x2)
COUNT_MAX = 1 << 22  # large levels up to this many scores may be counted in full


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


def _vector_step() -> int:
    """Elements per step of ATen's vectorised CPU loops (two float32 vectors)."""
    return 32 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 16


def _scalar_ranges(numel: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges of a contiguous float32 tensor of `numel` elements that torch.sigmoid
    computes in its scalar tail loop: the last `size % step` elements of each chunk that
    at::parallel_for gives a thread (one chunk below GRAIN_SIZE or on one thread)."""
    threads = torch.get_num_threads()
    if numel <= GRAIN_SIZE or threads == 1:
        chunks = [(0, numel)]
    else:
        tasks = min(threads, -(-numel // GRAIN_SIZE))
        size = -(-numel // tasks)
        chunks = [(lo, min(numel, lo + size)) for lo in range(0, numel, size)]
    step = _vector_step()
    return [(lo + (hi - lo) // step * step, hi) for lo, hi in chunks if (hi - lo) % step]


def _sigmoid_at(logits: torch.Tensor, positions: torch.Tensor, numel: int) -> torch.Tensor:
    """torch.sigmoid(flat)[positions], bit for bit, for a contiguous `flat` of `numel` logits
    that holds `logits` at `positions`, without computing the rest of it."""
    count = logits.numel()
    if count == 0:
        return logits.clone()
    padded = logits.new_zeros(-(-count // 64) * 64)
    padded[:count] = logits
    # pieces a multiple of the vector step and serial (< GRAIN_SIZE): all in vector lanes
    scores = torch.cat([torch.sigmoid(piece) for piece in padded.split(GRAIN_SIZE // 2)])
    scores = scores[:count]
    for lo, hi in _scalar_ranges(numel):
        tail = ((positions >= lo) & (positions < hi)).nonzero().squeeze(1)
        if tail.numel():  # a strided input takes the scalar loop throughout
            scores[tail] = torch.sigmoid(logits[tail].repeat_interleave(2)[::2])
    return scores


def _logit_below(score: float) -> float:
    """A logit at or under which torch's float32 sigmoid (either code path) is <= `score`:
    every logit whose sigmoid exceeds `score` is above it."""
    if score >= 1:
        return math.inf
    if score <= 0:
        return -math.inf
    score *= 1 - 2.0**-19  # 32 ulp under: sigmoid's rounding is a few
    return math.log(score) - math.log1p(-score)


def _logit_above(score: float) -> float:
    """A logit above which torch's float32 sigmoid is surely > `score` (inf: none is sure)."""
    score *= 1 + 2.0**-19
    if not 0 < score < 1:
        return math.inf
    return math.log(score) - math.log1p(-score)


def _select_literal(logits: torch.Tensor, num_classes: int, settings: PostprocessSettings):
    """torchvision's per-level selection verbatim on one image's [A*K, H*W] logits:
    (positions in its flattened [H*W*A*K] order, scores), best first."""
    channels, locations = logits.shape
    flat = logits.view(-1, num_classes, locations).permute(2, 0, 1).reshape(-1)
    scores = torch.sigmoid(flat)
    keep = scores > settings.score_thresh
    scores = scores[keep]
    positions = torch.where(keep)[0]
    scores, order = scores.topk(min(settings.topk_candidates, positions.numel()))
    return positions[order], scores


def _select_blocks(logits: torch.Tensor, settings: PostprocessSettings):
    """`_select_literal`'s result on a large level, scanning the logits in their own layout.

    The level is searched by segments of SEGMENT or more locations of a channel: their best
    logits in one pass, then only the segments that can hold a candidate. Blocks of segments
    (ranges of locations) are taken in torchvision's order. Until the level is known to hold
    64 * k scores above the threshold (torch.topk's heap regime), every such score is kept;
    once it is, and k are found, a block is searched only for scores above the k-th best so
    far, the least a score needs to enter the heap. Scores of earlier blocks under that bar
    are dropped too once the regime is known; the list is then padded back into it with
    -inf, which never enters the heap. (A NaN logit hides its segment; torchvision drops
    NaN scores too, but would keep the segment's others.)
    """
    channels, locations = logits.shape
    if settings.topk_candidates <= 0:
        return _select_literal(logits, 1, settings)  # torchvision's empty top-k
    size = min(s for s in range(min(SEGMENT, locations), locations + 1) if locations % s == 0)
    numel = channels * locations
    k = settings.topk_candidates
    heap_count = HEAP_SELECT_FACTOR * k
    runs = logits.view(-1, size)  # channel-major segments
    peaks = runs.amax(1).view(channels, -1)  # one pass over the map, at full memory speed
    floor = _logit_below(settings.score_thresh)
    sure = _logit_above(settings.score_thresh)
    # each segment above the sure logit holds a score above the threshold, each above the
    # floor at most `size`: either may settle the regime; else count where that is cheap
    heap = int((peaks > sure).count_nonzero()) >= heap_count
    known = heap or int((peaks > floor).count_nonzero()) * size < heap_count
    if not known and numel <= COUNT_MAX:
        heap = int((logits > sure).count_nonzero()) >= heap_count
    parts = []  # (positions, scores, needed in the heap regime or None for all)
    best = logits.new_empty(0)  # the k best scores so far, best first
    count = 0  # scores above the threshold, counted until heap_count
    start, span = 0, max(1, FIRST_BLOCK // (channels * size))
    while start < peaks.shape[1]:
        stop = min(peaks.shape[1], start + span)
        raised = heap and best.numel() >= k
        bar = float(best[-1]) if raised else settings.score_thresh
        cut = _logit_below(bar)
        channel, segment = (peaks[:, start:stop] > cut).nonzero().unbind(1)
        segment += start
        values = runs.index_select(0, channel * peaks.shape[1] + segment)  # [m, size]
        hit, offset = (values > cut).nonzero().unbind(1)
        values = values[hit, offset]
        location = segment[hit] * size + offset
        positions = location * channels + channel[hit]  # torchvision's flattened order
        scores = _sigmoid_at(values, positions, numel)
        keep = scores > bar
        positions, scores = positions[keep], scores[keep]
        needed = None
        if not raised:
            count += positions.numel()
            if best.numel() >= k:
                needed = scores > best[-1]
        parts.append((positions, scores, needed))
        best = torch.cat([best, scores])
        best = best.topk(min(k, best.numel())).values
        heap = heap or count >= heap_count
        start, span = stop, span * 2
    if heap:
        parts = [(p, s, None) if m is None else (p[m], s[m], None) for p, s, m in parts]
    positions = torch.cat([p for p, _, _ in parts])
    scores = torch.cat([s for _, s, _ in parts])
    positions, order = positions.sort()
    scores = scores[order]
    if heap and scores.numel() < heap_count:
        scores = torch.cat([scores, scores.new_full((heap_count - scores.numel(),), -math.inf)])
    scores, order = scores.topk(k if heap else min(k, count))
    return positions[order], scores


def _level_detections(class_map, box_map, level_anchor, image_size, settings):
    """Per image of one level: (boxes, scores, labels) of its top-k candidates, as
    torchvision's postprocess_detections makes them."""
    n, _, h, w = class_map.shape
    num_anchors = box_map.shape[1] // 4
    num_classes = class_map.shape[1] // num_anchors
    logits = class_map.reshape(n, -1, h * w)
    deltas = box_map.reshape(n, num_anchors, 4, h * w)
    literal = logits.shape[1] * h * w <= LITERAL_MAX
    out = []
    for i in range(n):
        if literal:
            positions, scores = _select_literal(logits[i], num_classes, settings)
        else:
            positions, scores = _select_blocks(logits[i], settings)
        anchor_index = positions // num_classes  # torchvision's (location, anchor) row
        labels = positions % num_classes
        if not positions.numel():
            out.append((deltas.new_empty(0, 4), scores, labels))
            continue
        location, anchor = anchor_index // num_anchors, anchor_index % num_anchors
        # the same rows in the same order as torchvision's: torch.exp's vector and scalar
        # lanes then fall alike
        boxes = BOX_CODER.decode_single(
            deltas[i][anchor, :, location].contiguous(), level_anchor[anchor_index]
        )
        out.append((box_ops.clip_boxes_to_image(boxes, image_size), scores, labels))
    return out


def _batched_nms(boxes, scores, labels, iou_thresh: float) -> torch.Tensor:
    """torchvision's box_ops.batched_nms, result for result: per class above 1000 boxes on the
    CPU (the same nms calls on the same boxes, grouped by one sort instead of a scan per
    class), else its coordinate trick (float32 offsets, one call)."""
    if boxes.numel() <= 4000:
        return box_ops._batched_nms_coordinate_trick(boxes, scores, labels, iou_thresh)
    by_label, order = labels.sort(stable=True)  # each class in index order, as torch.where
    counts = torch.unique_consecutive(by_label, return_counts=True)[1].tolist()
    kept, single, start = [], [], 0
    for count, class_boxes, class_scores in zip(
        counts, boxes[order].split(counts), scores[order].split(counts), strict=True
    ):
        if count > 1:
            kept.append(torch.ops.torchvision.nms(class_boxes, class_scores, iou_thresh) + start)
        else:  # nms keeps a lone box
            single.append(start)
        start += count
    kept.append(torch.tensor(single, dtype=torch.int64, device=boxes.device))
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    keep_mask[order[torch.cat(kept)]] = True
    keep = torch.where(keep_mask)[0]
    return keep[scores[keep].sort(descending=True)[1]]


def original_scale(original_sizes, image_size, device=None) -> torch.Tensor:
    """[N, 4] factors (x, y, x, y) from the model input to each original image, as
    torchvision's transform.resize_boxes computes them: float32 ratios, original / input."""
    ratios = torch.tensor(original_sizes, dtype=torch.float32) / torch.tensor(
        image_size, dtype=torch.float32
    )
    return ratios[:, [1, 0, 1, 0]].to(device)


def postprocess_detections(
    class_maps: list[torch.Tensor],
    box_maps: list[torch.Tensor],
    anchors: list[torch.Tensor],
    image_size: tuple[int, int],
    original_sizes: list[tuple[int, int]],
    settings: PostprocessSettings,
) -> list[dict[str, torch.Tensor]]:
    """Detections per image: boxes (xyxy, original pixels), scores and labels, best first.

    class_maps/box_maps: the 5+5 head maps of a batch (float32); anchors: `level_anchors`
    for the model input `image_size` (height, width); original_sizes: (height, width) of each
    image.
    """
    n = class_maps[0].shape[0]
    per_image = [[] for _ in range(n)]
    for class_map, box_map, level_anchor in zip(class_maps, box_maps, anchors, strict=True):
        found = _level_detections(
            class_map.float(), box_map.float(), level_anchor, image_size, settings
        )
        for i, level in enumerate(found):
            per_image[i].append(level)
    detections = []
    scales = original_scale(original_sizes, image_size, class_maps[0].device)
    for scale, found in zip(scales, per_image, strict=True):
        boxes, scores, labels = (torch.cat(parts) for parts in zip(*found, strict=True))
        # NMS per image: one call over the batch would compare every pair of boxes across
        # images too, and torchvision runs it per image
        kept = _batched_nms(boxes, scores, labels, settings.nms_thresh)
        kept = kept[: settings.detections_per_img]
        detections.append(
            {"boxes": boxes[kept] * scale, "scores": scores[kept], "labels": labels[kept]}
        )
    return detections
