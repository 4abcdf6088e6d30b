"""Training the demo RetinaNet on the synthetic demo set, and its val mAP.

The demo weights ship with the project so that the offline demo needs no download; this module
is how they were made, kept so that anyone can remake them (scripts/train_demo_model.py). The
mAP is the workflow's: `evaluate.score_detections` (pycocotools, every image counted).

Training sees exactly what inference sees: each image goes through the demo set's JPEG
encoding and the demo config's preprocessing (stretch to 320x320, PIL bilinear), and the boxes
are scaled the same way. The whole preprocessed split is held on the device as uint8, so a step
does no host work beyond launching kernels.
"""

from __future__ import annotations

import io as _stdio
import math
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models.detection.image_list import ImageList

from ..data.images import load_image, resize_image
from ..evaluate import detections_to_coco, score_detections
from ..io import atomic_path, read_json
from ..model.architectures import build_retinanet
from ..model.checkpoint import load_weights
from .dataset import DEMO_CLASSES, SPLIT_SEEDS, make_demo_dataset, make_demo_image

ARCH = "demo"
IMAGE_SIZE = 320
NUM_CLASSES = len(DEMO_CLASSES)
JPEG_QUALITY = 92  # what make_demo_dataset writes, so training sees the same artefacts


@dataclass
class DemoTensors:
    """A preprocessed split: images (N, 3, S, S) uint8; boxes (N, M, 4) xyxy in input pixels
    and labels (N, M), padded to M objects; counts[i] of them are real (a host list, so that
    slicing targets never waits on the device)."""

    images: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    counts: list[int]


def _prepare_sample(seed: int, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training sample as inference would see it: JPEG round trip, reference resize."""
    img, objects = make_demo_image(seed, index)
    buf = _stdio.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    buf.seek(0)
    with Image.open(buf) as decoded:
        img = decoded.convert("RGB")
    chw = resize_image(img, (IMAGE_SIZE, IMAGE_SIZE), "pil")
    pixels = np.rint(chw * 255.0).astype(np.uint8)  # exact: resize_image is uint8 / 255
    sx, sy = IMAGE_SIZE / img.width, IMAGE_SIZE / img.height
    boxes = np.array(
        [
            [x * sx, y * sy, (x + w) * sx, (y + h) * sy]
            for x, y, w, h in (o["bbox"] for o in objects)
        ],
        dtype=np.float32,
    ).reshape(-1, 4)
    labels = np.array([o["category_id"] for o in objects], dtype=np.int64)
    return pixels, boxes, labels


def load_demo_split(
    split: str = "train",
    num_images: int = 4000,
    device: str | torch.device = "cpu",
    workers: int | None = None,
) -> DemoTensors:
    """Generate and preprocess a split in worker processes and put it on `device`.

    Workers are spawned, not forked, so this is safe after CUDA has been initialised.
    """
    seed = SPLIT_SEEDS[split]
    workers = workers or min(16, os.cpu_count() or 1)
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            chunk = max(1, num_images // (workers * 8))
            samples = list(
                pool.map(_prepare_sample, [seed] * num_images, range(num_images), chunksize=chunk)
            )
    else:
        samples = [_prepare_sample(seed, i) for i in range(num_images)]
    counts = [len(labels) for _, _, labels in samples]
    slots = max(1, max(counts))
    boxes = np.zeros((num_images, slots, 4), dtype=np.float32)
    labels = np.zeros((num_images, slots), dtype=np.int64)
    for i, (_, b, lab) in enumerate(samples):
        boxes[i, : len(lab)] = b
        labels[i, : len(lab)] = lab
    images = torch.from_numpy(np.stack([pixels for pixels, _, _ in samples]))
    return DemoTensors(
        images=images.to(device),
        boxes=torch.from_numpy(boxes).to(device),
        labels=torch.from_numpy(labels).to(device),
        counts=counts,
    )


class _BatchTransform(nn.Module):
    """Stands in for torchvision's GeneralizedRCNNTransform while training.

    Inputs are already the model's size, so its per-image resize (an identity at scale 1) and
    padding only cost kernel launches; the normalisation is the same, done once per batch.
    """

    def __init__(self, reference: nn.Module):
        super().__init__()
        self.register_buffer("mean", torch.tensor(reference.image_mean)[:, None, None], False)
        self.register_buffer("std", torch.tensor(reference.image_std)[:, None, None], False)

    def forward(self, images: torch.Tensor, targets=None):
        size = (images.shape[-2], images.shape[-1])
        return ImageList((images - self.mean) / self.std, [size] * len(images)), targets


def _augment(
    images: torch.Tensor, boxes: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal flip (every demo shape is left-right symmetric) and a random channel order
    (colour carries no class information), each drawn per image on the device."""
    n, _, _, width = images.shape
    flip = torch.rand(n, device=images.device, generator=gen) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    mirrored = torch.stack(
        [width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], dim=-1
    )
    boxes = torch.where(flip[:, None, None], mirrored, boxes)
    order = torch.rand(n, 3, device=images.device, generator=gen).argsort(dim=1)
    images = images.gather(1, order[:, :, None, None].expand_as(images))
    return images, boxes


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine to 0: RetinaNet's focal loss is unstable at full lr
    from random weights."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def train_demo_model(
    out_path: str | os.PathLike,
    num_train: int = 4000,
    epochs: int = 60,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    warmup_steps: int = 500,
    grad_clip: float = 10.0,
    device: str = "cpu",
    seed: int = 0,
    workers: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train the demo RetinaNet from scratch and save its state dict atomically to `out_path`.

    AdamW (no decay on norms and biases) with warmup + cosine; torchvision's RetinaNet losses
    (focal loss, L1 box regression). Returns a summary (losses, timings) for the record.
    """
    dev = torch.device(device)
    _seed_everything(seed)
    start = time.perf_counter()
    data = load_demo_split("train", num_train, dev, workers)
    log(
        f"data: {num_train} train images, {sum(data.counts)} objects, "
        f"{time.perf_counter() - start:.1f} s"
    )

    model = build_retinanet(ARCH, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE).to(dev)
    inference_transform = model.transform
    model.transform = _BatchTransform(inference_transform).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    fused = dev.type == "cuda"
    optimizer = torch.optim.AdamW(groups, lr=lr, fused=fused)
    steps_per_epoch = num_train // batch_size  # drop the ragged last batch: BN wants full ones
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, warmup_steps, total)
    )
    log(
        f"model: {sum(p.numel() for p in params) / 1e6:.2f} M params; {epochs} epochs x "
        f"{steps_per_epoch} steps of {batch_size}, lr {lr}, wd {weight_decay}, "
        f"warmup {warmup_steps}, device {dev}"
    )

    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=dev).manual_seed(seed + 1)
    history = []
    train_start = time.perf_counter()
    model.train()
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(num_train, generator=order_gen)[: steps_per_epoch * batch_size]
        order_dev, order_host = order.to(dev), order.tolist()
        sums = torch.zeros(2, device=dev)
        for step in range(steps_per_epoch):
            idx = order_dev[step * batch_size : (step + 1) * batch_size]
            counts = [
                data.counts[i] for i in order_host[step * batch_size : (step + 1) * batch_size]
            ]
            images = data.images[idx].float().div_(255.0)
            images, boxes = _augment(images, data.boxes[idx], aug_gen)
            labels = data.labels[idx]
            targets = [
                {"boxes": boxes[j, :n], "labels": labels[j, :n]} for j, n in enumerate(counts)
            ]
            losses = model(images, targets)
            loss = losses["classification"] + losses["bbox_regression"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            scheduler.step()
            sums += torch.stack([losses["classification"], losses["bbox_regression"]]).detach()
        cls_loss, box_loss = (sums / steps_per_epoch).tolist()  # the one sync per epoch
        if not math.isfinite(cls_loss + box_loss):
            raise FloatingPointError(f"training diverged at epoch {epoch}: try a lower lr")
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "cls": cls_loss, "box": box_loss, "seconds": seconds})
        log(
            f"epoch {epoch:3d}/{epochs}  cls {cls_loss:.4f}  box {box_loss:.4f}  "
            f"lr {scheduler.get_last_lr()[0]:.2e}  {seconds:.1f} s"
        )
    train_seconds = time.perf_counter() - train_start

    model.transform = inference_transform
    model.eval()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(out_path) as tmp:
        torch.save(state, tmp)
    log(f"saved {out_path} after {train_seconds:.0f} s of training")
    return {"train_seconds": train_seconds, "history": history}


@torch.inference_mode()
def evaluate_demo_model(
    weights: str | os.PathLike,
    max_detections: int,
    num_val: int = 200,
    device: str = "cpu",
    batch_size: int = 16,
) -> dict:
    """Bbox mAP of demo weights on the val split, through the inference path: JPEG files,
    reference preprocessing to 320x320, boxes scaled back to each image's own size.

    Scored by `evaluate.score_detections` as the workflow scores a variant (`max_detections`:
    the config's, COCOeval's maxDets); returns its record, the same keys as
    results/map_{variant}.json: bbox_mAP (AP@[.5:.95]), the 12 COCO stats by name, the
    summary lines.
    """
    dev = torch.device(device)
    model = build_retinanet(ARCH, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE)
    load_weights(model, weights, ARCH)
    model.to(dev).eval()
    with tempfile.TemporaryDirectory(prefix="retinaflow-demo-val-") as tmp:
        annotations_path = make_demo_dataset(tmp, "val", num_val)
        images = read_json(annotations_path)["images"]
        detections = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = np.stack(
                [
                    resize_image(
                        load_image(os.path.join(tmp, "images", im["file_name"])),
                        (IMAGE_SIZE, IMAGE_SIZE),
                        "pil",
                    )
                    for im in chunk
                ]
            )
            outputs = model(list(torch.from_numpy(batch).to(dev)))
            for im, out in zip(chunk, outputs):
                scale = torch.tensor([im["width"], im["height"]] * 2) / IMAGE_SIZE
                boxes = (out["boxes"].cpu() * scale).numpy()  # xyxy, the image's own pixels
                detections.extend(
                    detections_to_coco(im["id"], boxes, out["scores"].cpu(), out["labels"].cpu())
                )
        return score_detections(annotations_path, detections, max_detections)
