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
# the speed plot is a box plot of a few calls a variant: its colour is the dots and the median
# lines alone (~0.3% of its pixels on the demo), so a third of that, still ~360 pixels at its
# size and far above an empty figure's none
MIN_COLOURED_SPEED = 0.001


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


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
)  # fmt: skip


def install_chromium() -> str:
    """Debian's chromium, installed with apt when missing (tests/report/install_chromium.sh,
    as tests/cluster/install.sh installs SLURM); returns its path."""
    import shutil
    import subprocess

    script = Path(__file__).resolve().parent / "report" / "install_chromium.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    chromium = shutil.which("chromium")
    assert proc.returncode == 0 and chromium, f"{script} failed:\n{proc.stdout}{proc.stderr}"
    return chromium


def screenshot(chromium: str, page: str | Path, out: str | Path, size=(1400, 1000)) -> Path:
    """A headless Chromium screenshot of `page` (a file), as a user's browser renders it."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=10000",
                f"--screenshot={out}", Path(page).resolve().as_uri(),
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert Path(out).is_file(), f"chromium wrote no screenshot:\n{proc.stdout}{proc.stderr}"
    return Path(out)
