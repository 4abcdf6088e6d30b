"""Output fidelity of a build: its 10 head maps against ONNX Runtime fp32 on the same images.

mAP says whether a build is good enough; fidelity says where it departs (which level, class or
box maps) and catches a broken build long before a full evaluation would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .data.images import iter_batches
from .export import compare_outputs
from .model.head import OUTPUT_NAMES
from .runtime import HeadRunner, open_build


def measure_fidelity(
    candidate: HeadRunner,
    reference: HeadRunner,
    image_paths: Sequence[str | os.PathLike],
    image_size: int,
    resize_kernel: str = "pil",
    batch_size: int = 1,
) -> dict:
    """Per map over all images: lowest and mean cosine, largest absolute and relative error."""
    per_map: dict[str, dict[str, list[float]]] = {
        name: {"cosine": [], "max_abs": [], "max_rel": []} for name in OUTPUT_NAMES
    }
    for batch in iter_batches(
        list(image_paths), (image_size, image_size), resize_kernel, batch_size
    ):
        ref_maps, out_maps = reference(batch), candidate(batch)
        for i in range(len(batch)):
            report = compare_outputs([m[i] for m in ref_maps], [m[i] for m in out_maps])
            for name, values in report.items():
                for key, value in values.items():
                    per_map[name][key].append(value)
    maps = {
        name: {
            "cosine_min": min(v["cosine"]),
            "cosine_mean": float(np.mean(v["cosine"])),
            "max_abs": max(v["max_abs"]),
            "max_rel": max(v["max_rel"]),
        }
        for name, v in per_map.items()
    }
    return {
        "images": len(image_paths),
        "reference": "onnxruntime fp32",
        "cosine_min": min(m["cosine_min"] for m in maps.values()),
        "max_rel": max(m["max_rel"] for m in maps.values()),
        "maps": maps,
    }


def fidelity_of_build(
    build_path: str | os.PathLike,
    reference_onnx: str | os.PathLike,
    image_paths: Sequence[str | os.PathLike],
    image_size: int,
    resize_kernel: str = "pil",
    batch_size: int = 1,
    threads: int = 1,
) -> dict:
    """measure_fidelity of a build file (.so or .onnx) against the fp32 ONNX model."""
    record = measure_fidelity(
        open_build(build_path, threads, batch_size=batch_size),
        open_build(reference_onnx, threads),
        image_paths,
        image_size,
        resize_kernel,
        batch_size,
    )
    return {"build": str(build_path), "reference_onnx": str(reference_onnx), **record}
