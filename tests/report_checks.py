"""What makes a plot file a real picture: PIL reads it as a PNG of a useful size, and it is
not a blank canvas with axes: it holds many colours and a share of coloured (not grey: bars,
curves, boxes, photos) pixels. The thresholds sit well below what the report's plots hold
(see the values each test prints on failure) and well above an empty figure's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# an empty matplotlib figure with axes, ticks and a title: ~2% non-white, ~0% coloured
MIN_COLOURS = 64  # distinct RGB values (antialiased text alone gives a few dozen greys)
MIN_INK = 0.03  # share of pixels that are not (near) white
MIN_COLOURED = 0.003  # share of pixels with chroma: max(r,g,b) - min(r,g,b) > 60


def plot_figures(path: str | Path) -> dict[str, float]:
    with Image.open(path) as image:
        assert image.format == "PNG", f"{path}: {image.format}, not a PNG"
        image.load()
        rgb = np.asarray(image.convert("RGB")).astype(np.int32)
    flat = rgb.reshape(-1, 3)
    return {
        "width": rgb.shape[1],
        "height": rgb.shape[0],
        "colours": len(np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2])),
        "ink": float((flat.min(axis=1) < 235).mean()),
        "coloured": float((flat.max(axis=1) - flat.min(axis=1) > 60).mean()),
    }


def assert_real_plot(
    path: str | Path, min_size=(400, 300), min_coloured: float = MIN_COLOURED
) -> dict[str, float]:
    figures = plot_figures(path)
    assert figures["width"] >= min_size[0] and figures["height"] >= min_size[1], (path, figures)
    assert figures["colours"] >= MIN_COLOURS, (path, figures)
    assert figures["ink"] >= MIN_INK, (path, figures)
    assert figures["coloured"] >= min_coloured, (path, figures)
    return figures
