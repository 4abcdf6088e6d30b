"""Post-processing of one batch, the host path vs the batched one (per-image NMS, one NMS
call), on dense random head maps (~13% of scores above 0.05: every level has its top-k).

Runs on the CPU here; with --device cuda it times the batched path where a GPU runner's maps
would be (the host path always runs on the CPU, from host copies of the maps).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ..model.architectures import anchor_generator
from ..postprocess import PostprocessSettings, level_anchors, postprocess_detections


def dense_maps(
    batch: int, num_classes: int, size: int, device: str, seed: int = 0, mean: float = -4.6
):
    """The 5 + 5 head maps of a batch at `size`, N(mean, 1.5) logits, small deltas (mean
    -4.6: ~13% of scores above 0.05; -8: ~0.2%, nearer a trained model's)."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [(-(-size // s),) * 2 for s in (8, 16, 32, 64, 128)]
    class_maps = [
        torch.randn(batch, 9 * num_classes, *hw, generator=gen) * 1.5 + mean for hw in sizes
    ]
    box_maps = [torch.randn(batch, 36, *hw, generator=gen) * 0.1 for hw in sizes]
    return [m.to(device) for m in class_maps], [m.to(device) for m in box_maps], sizes


def _median_s(run, repeats: int, device: str) -> float:
    runs = []
    for _ in range(repeats + 1):  # the first one warms up
        if device != "cpu":
            torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        if device != "cpu":
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs[1:])


def main(argv=None) -> None:
    from ..batched_postprocess import batched_postprocess_detections
    from ..device_postprocess import device_postprocess_detections

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnext50_32x4d_fpn")
    parser.add_argument("--classes", type=int, default=264)
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mean", type=float, default=-4.6, help="the logits' mean")
    parser.add_argument("--no-host", action="store_true", help="skip the host path")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, time nothing")
    args = parser.parse_args(argv)
    if args.dry_run:
        print(f"would time: {vars(args)}")
        return
    settings = PostprocessSettings(0.05, 1000, 0.5, 300)  # MLPerf's values
    class_maps, box_maps, sizes = dense_maps(
        args.batch, args.classes, args.size, args.device, mean=args.mean
    )
    image = (args.size, args.size)
    anchors = level_anchors(anchor_generator(args.arch), image, sizes)
    originals = [image] * args.batch
    host_maps = [m.cpu() for m in class_maps], [m.cpu() for m in box_maps]
    device_anchors = [a.to(args.device) for a in anchors]
    runs = {}
    if not args.no_host:
        runs["host"] = lambda: postprocess_detections(
            *host_maps, anchors, image, originals, settings
        )
    runs["device"] = lambda: device_postprocess_detections(
        class_maps, box_maps, device_anchors, image, originals, settings
    )
    for nms in ("per_image", "one_call"):
        runs[f"batched, nms={nms}"] = lambda nms=nms: batched_postprocess_detections(
            class_maps, box_maps, device_anchors, image, originals, settings, nms=nms
        )
    print(
        f"{args.batch} images, {args.size}x{args.size}, {args.classes} classes, logits "
        f"N({args.mean}, 1.5) ({args.device})"
    )
    for name, run in runs.items():
        ms = 1e3 * _median_s(run, args.repeats, args.device) / args.batch
        print(f"  {name:<24}{ms:8.1f} ms per image")
