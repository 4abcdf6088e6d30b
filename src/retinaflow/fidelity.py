"""Output fidelity of a build: its 10 head maps against ONNX Runtime fp32 on the same images.

mAP says whether a build is good enough; fidelity says where it departs (which level, class or
box maps) and catches a broken build long before a full evaluation would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .data.images import iter_batches
from .errors import FidelityError, ref
from .export import compare_outputs
from .model.head import OUTPUT_NAMES
from .runtime import HeadRunner, backend, open_runner
from .runtime.tvm_runner import build_device


def measure_fidelity(
    candidate: HeadRunner,
    reference: HeadRunner,
    image_paths: Sequence[str | os.PathLike],
    image_size: int,
    resize_kernel: str,
    batch_size: int,
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


def check_fidelity(record: dict, min_cosine: float) -> dict:
    """The record with its limit added; FidelityError when any map's worst cosine is below it.

    The message gives every map's figures (worst cosine, largest absolute and relative error),
    marks those below the limit, and names the setting that sets it (`min_cosine`).
    """
    checked = {**record, "limit": {"min_cosine": min_cosine}}
    failing = [name for name, m in record["maps"].items() if m["cosine_min"] < min_cosine]
    if not failing:
        return checked
    lines = [
        f"  {name:<20} worst cosine {m['cosine_min']:.6f}, max abs error {m['max_abs']:.4g}, "
        f"max rel error {m['max_rel']:.4g}" + ("   <- below the limit" if name in failing else "")
        for name, m in record["maps"].items()
    ]
    build = record.get("build", "the build")
    raise FidelityError(
        f"{build} drifts from {record.get('reference', 'the reference')} past the fidelity limit "
        f"{ref('min_cosine')} = {min_cosine} on {record['images']} images: {len(failing)} of "
        f"{len(record['maps'])} maps fall below it (worst cosine {record['cosine_min']:.6f}).\n"
        + "\n".join(lines)
        + f"\nFix the build, or relax the limit: set {ref('min_cosine')} to at most "
        f"{_relaxed(record['cosine_min'])} in your config file."
    )


def _relaxed(cosine: float) -> float:
    """A round limit at or below `cosine` (three decimals), for the message's example."""
    return float(np.floor(cosine * 1000) / 1000)


def fidelity_of_build(
    build_path: str | os.PathLike,
    reference_onnx: str | os.PathLike,
    image_paths: Sequence[str | os.PathLike],
    image_size: int,
    resize_kernel: str,
    batch_size: int,
    threads: int,
    variant: str = "fp32",
) -> dict:
    """measure_fidelity of a variant's build (a TVM build: fp32, fp16, int8...; `onnx-int8`
    for a QDQ model) against the fp32 ONNX model, both opened by runtime.open_runner (a
    build for a CUDA target on its GPU: tvm_runner.build_device)."""
    device = build_device(backend(variant), build_path)
    record = measure_fidelity(
        open_runner(variant, build_path, threads=threads, device=device, batch_size=batch_size),
        open_runner("onnx", reference_onnx, threads=threads),
        image_paths,
        image_size,
        resize_kernel,
        batch_size,
    )
    return {"build": str(build_path), "reference_onnx": str(reference_onnx), **record}
