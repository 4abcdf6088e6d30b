"""Image decoding and the reference preprocessing: RGB, stretch to the model's input size (no
aspect ratio kept, no padding), scale to [0,1], CHW float32. Normalisation is inside the model."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageError

RESIZE_KERNELS = ("pil", "cv2", "torch")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image fully and convert it to RGB, or raise an ImageError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image {path} is missing: rerun the dataset rule to fetch it again")
    try:
        with Image.open(path) as img:
            img.load()
            # EXIF orientation applied, as cv2.imread does: the size matches the json's
            return ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:
        size_kb = path.stat().st_size / 1024
        raise ImageError(
            f"image {path} does not decode ({err}; {size_kb:.0f} KB on disk): "
            "delete it and rerun the dataset rule"
        ) from err


def resize_image(img: Image.Image, size: tuple[int, int], kernel: str = "pil") -> np.ndarray:
    """Stretch an RGB image to size (height, width) with bilinear interpolation.

    Returns CHW float32 in [0, 1]. `kernel` picks the implementation: PIL's bilinear (the
    reference, antialiased when shrinking), OpenCV's INTER_LINEAR, or torch's bilinear
    interpolate (align_corners=False, as torchvision's transform).
    """
    height, width = size
    if kernel == "pil":
        arr = np.asarray(img.resize((width, height), Image.BILINEAR))
        return np.divide(arr.transpose(2, 0, 1), np.float32(255), dtype=np.float32, order="C")
    if kernel == "cv2":
        import cv2

        arr = cv2.resize(np.asarray(img), (width, height), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32) / 255.0
    if kernel == "torch":
        import torch

        chw = torch.from_numpy(np.asarray(img).transpose(2, 0, 1).astype(np.float32) / 255.0)
        out = torch.nn.functional.interpolate(
            chw[None], size=(height, width), mode="bilinear", align_corners=False
        )
        return out[0].numpy()
    raise ValueError(f"resize kernel must be one of {RESIZE_KERNELS}, got {kernel!r}")


def preprocess_image(path, size: tuple[int, int], kernel: str = "pil") -> np.ndarray:
    """Decode and resize one image file: the model's input without the batch dimension."""
    return resize_image(load_image(path), size, kernel)


def iter_batches(
    paths: Sequence[str | os.PathLike],
    size: tuple[int, int],
    kernel: str = "pil",
    batch_size: int = 8,
    workers: int = 2,
) -> Iterator[np.ndarray]:
    """Yield NCHW float32 batches in order. Images decode in a thread pool (PIL and OpenCV
    release the GIL) while the consumer works on the previous batch."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        window: list[list] = []
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            window.append([pool.submit(preprocess_image, p, size, kernel) for p in chunk])
            if len(window) > 1:
                yield np.stack([f.result() for f in window.pop(0)])
        for batch in window:
            yield np.stack([f.result() for f in batch])
