"""Source local: a split already on disk in the MLPerf layout (fetched elsewhere), checked
before use, since nothing here downloaded it. It downloads nothing, so the download settings
have nothing to act on."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import DatasetError, ref
from .mlperf_json import image_sizes
from .settings import OpenImagesSettings
from .splits import Split, split_named


def check_local(split: str | Split, settings: OpenImagesSettings) -> Path:
    """Check the `split` folder at settings.local_root and return its annotations json.

    Every image the json lists must exist under <root>/<split>/data, decode, and have the
    width/height the json gives; otherwise one error names the offending files.
    """
    split = split_named(split)
    if not settings.local_root:
        raise DatasetError(
            f"{ref('local_root')} must name a folder in the MLPerf layout when {ref('source')} "
            "is local"
        )
    root = Path(settings.local_root)
    output = split.annotations_path(root)
    if not output.is_file():
        raise DatasetError(
            f"{output} does not exist: {ref('local_root')} must name a folder in the MLPerf "
            f"layout (annotations/{split.annotations_json} and {split.name}/data/*.jpg)"
        )
    try:
        with open(output) as f:
            coco = json.load(f)
        images = coco["images"]
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{output} is not a COCO annotations file ({err!r})") from err
    image_dir = split.image_dir(root)
    paths = [image_dir / img["file_name"] for img in images]
    sizes = image_sizes(paths, decode=True)
    wrong = [
        f"{path}: json says {img['width']}x{img['height']}, file is {w}x{h}"
        for path, img, (w, h) in zip(paths, images, sizes, strict=True)
        if (img["width"], img["height"]) != (w, h)
    ]
    if wrong:
        shown = "\n  ".join(wrong[:10])
        raise DatasetError(
            f"{len(wrong)} images in {image_dir} do not match the sizes in {output} (rebuild the "
            f"json, or fetch the images again):\n  {shown}"
        )
    return output
