"""The demo's data: a deterministic synthetic detection set in the openimages-mlperf.json
conventions, and its calibration split with the list file quantize reads.

Filled shapes of six classes on textured backgrounds. Colour says nothing about the class, so
the model has to learn shape. Image sizes and aspect ratios vary; object sizes span the three
COCO area ranges (small < 32², medium, large > 96²); a few images hold no object.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..calibration import write_calibration_list
from ..io import atomic_path, read_json, write_json

DEMO_CLASSES = ("ellipse", "rectangle", "triangle", "cross", "ring", "diamond")
# One seed per split; an image's name and pixels are functions of (seed, index) alone, so
# splits of different seeds share no image (calibration.check_disjoint guards the rest).
SPLIT_SEEDS = {"train": 1000, "val": 2000, "calibration": 3000}


def _shape_polygon(name: str, x0: float, y0: float, w: float, h: float) -> list[tuple]:
    x1, y1 = x0 + w, y0 + h
    cx, cy = x0 + w / 2, y0 + h / 2
    if name == "triangle":
        return [(cx, y0), (x1, y1), (x0, y1)]
    if name == "diamond":
        return [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    if name == "cross":
        tw, th = w / 3, h / 3
        return [
            (x0 + tw, y0), (x1 - tw, y0), (x1 - tw, y0 + th), (x1, y0 + th), (x1, y1 - th),
            (x1 - tw, y1 - th), (x1 - tw, y1), (x0 + tw, y1), (x0 + tw, y1 - th), (x0, y1 - th),
            (x0, y0 + th), (x0 + tw, y0 + th),
        ]  # fmt: skip
    raise ValueError(name)


def _draw_shape(draw: ImageDraw.ImageDraw, name: str, box, colour, background) -> None:
    """Draw `name` so that it touches all four sides of box (x0, y0, w, h)."""
    x0, y0, w, h = box
    xy = [x0, y0, x0 + w - 1, y0 + h - 1]
    if name == "ellipse":
        draw.ellipse(xy, fill=colour)
    elif name == "rectangle":
        draw.rectangle(xy, fill=colour)
    elif name == "ring":
        draw.ellipse(xy, fill=colour)
        iw, ih = w * 0.3, h * 0.3
        draw.ellipse([x0 + iw, y0 + ih, x0 + w - 1 - iw, y0 + h - 1 - ih], fill=background)
    else:
        draw.polygon(_shape_polygon(name, x0, y0, w - 1, h - 1), fill=colour)


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth colour gradient plus blurred noise: texture without object-like edges."""
    corners = rng.uniform(40, 215, size=(2, 2, 3))
    ys = np.linspace(0, 1, height)[:, None, None]
    xs = np.linspace(0, 1, width)[None, :, None]
    top = corners[0, 0] * (1 - xs) + corners[0, 1] * xs
    bottom = corners[1, 0] * (1 - xs) + corners[1, 1] * xs
    base = top * (1 - ys) + bottom * ys
    noise = rng.normal(0, 18, size=(height, width, 3))
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(1.5))


def _iou(a, b) -> float:
    ax1, ay1, aw, ah = a
    bx1, by1, bw, bh = b
    iw = max(0.0, min(ax1 + aw, bx1 + bw) - max(ax1, bx1))
    ih = max(0.0, min(ay1 + ah, by1 + bh) - max(ay1, by1))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def _object_size(rng: np.random.Generator, width: int, height: int) -> tuple[int, int]:
    """Draw a size from one of the three COCO area ranges (equal odds)."""
    limit = min(width, height) - 4
    side_range = [(10, 28), (36, 90), (104, 220)][rng.integers(3)]
    side = rng.uniform(side_range[0], min(side_range[1], limit))
    aspect = np.exp(rng.uniform(-0.4, 0.4))
    w = int(round(np.clip(side * aspect, 8, limit)))
    h = int(round(np.clip(side / aspect, 8, limit)))
    return w, h


def _image_id(seed: int, index: int) -> str:
    """A 16-hex-digit id like OpenImages' ImageID, stable for (seed, index)."""
    return hashlib.sha1(f"retinaflow-demo-{seed}-{index}".encode()).hexdigest()[:16]


def make_demo_image(seed: int, index: int) -> tuple[Image.Image, list[dict]]:
    """One synthetic image and its objects (bbox xywh in pixels, category id)."""
    rng = np.random.default_rng([seed, index])
    width = int(rng.integers(240, 561))
    height = int(rng.integers(240, 561))
    img = _background(rng, width, height)
    draw = ImageDraw.Draw(img)
    count = 0 if rng.random() < 0.06 else int(rng.integers(1, 7))
    objects: list[dict] = []
    for _ in range(count * 10):
        if len(objects) == count:
            break
        w, h = _object_size(rng, width, height)
        x0 = int(rng.integers(0, width - w + 1))
        y0 = int(rng.integers(0, height - h + 1))
        box = (x0, y0, w, h)
        if any(_iou(box, o["bbox"]) > 0.0 for o in objects):
            continue
        category = int(rng.integers(len(DEMO_CLASSES)))
        background = np.asarray(img)[y0 + h // 2, x0 + w // 2].astype(int)
        colour = rng.integers(0, 256, size=3)
        while np.abs(colour - background).sum() < 120:  # keep every object visible
            colour = rng.integers(0, 256, size=3)
        colour, background = tuple(int(c) for c in colour), tuple(int(c) for c in background)
        _draw_shape(draw, DEMO_CLASSES[category], box, colour, background)
        objects.append({"bbox": box, "category_id": category})
    return img, objects


def make_demo_dataset(
    root: str | os.PathLike, split: str, num_images: int, seed: int | None = None
) -> Path:
    """Write <root>/images/<ImageID>.jpg and <root>/annotations.json; return the json path.
    `seed` None: the split's own (SPLIT_SEEDS, those of the shipped demo model); the workflow
    passes the config's (the evaluation split's seed, the calibration split's).

    Image ids follow MLCommons: sorted by ImageID, factorised, plus 1.
    """
    seed = SPLIT_SEEDS[split] if seed is None else seed
    root = Path(root)
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    samples = sorted((_image_id(seed, i), i) for i in range(num_images))
    images, annotations = [], []
    for image_id, (name, index) in enumerate(samples, start=1):
        img, objects = make_demo_image(seed, index)
        file_name = f"{name}.jpg"
        with atomic_path(image_dir / file_name) as tmp:
            img.save(tmp, format="JPEG", quality=92)
        images.append(
            {"id": image_id, "file_name": file_name, "width": img.width, "height": img.height}
        )
        for obj in objects:
            x, y, w, h = (float(v) for v in obj["bbox"])
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": obj["category_id"],
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "IsOccluded": 0,
                    "IsTruncated": 0,
                    "IsGroupOf": 0,
                    "IsDepiction": 0,
                    "IsInside": 0,
                }
            )
    categories = [{"id": i, "name": name} for i, name in enumerate(DEMO_CLASSES)]
    out = root / "annotations.json"
    write_json(out, {"images": images, "annotations": annotations, "categories": categories})
    return out


def make_demo_calibration(
    root: str | os.PathLike, num_images: int, seed: int, list_path: str | os.PathLike
) -> list[str]:
    """The demo's calibration split (its own seed, never the evaluation split's) under `root`,
    in the DAG layout, and its sorted file names written to `list_path`; returns the names."""
    annotations = make_demo_dataset(root, "calibration", num_images, seed)
    names = sorted(img["file_name"] for img in read_json(annotations)["images"])
    write_calibration_list(names, list_path)
    return names
