"""Export of the truncated forward (the 10 head maps) to ONNX, onnxsim, and the parity check
of the exported file against PyTorch on real images."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from .errors import ParityError
from .errors import ref as setting_ref
from .io import atomic_path
from .model.head import INPUT_NAME, OUTPUT_NAMES, HeadMaps


def export_head_onnx(head: HeadMaps, path: str | os.PathLike, image_size: int, opset: int):
    """Write the head as ONNX with a dynamic batch dimension and stable input/output names."""
    head = head.eval()
    dummy = torch.zeros(1, 3, image_size, image_size)
    dynamic = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            head,
            (dummy,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
        onnx.checker.check_model(str(tmp))


def simplify_onnx(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """onnxsim: constant folding and shape inference, checked by onnxsim's own run."""
    import onnxsim

    model, ok = onnxsim.simplify(onnx.load(str(src)))
    if not ok:
        raise ParityError(f"onnxsim could not validate the simplified model of {src}")
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))


def compare_outputs(reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict:
    """Per head map: max absolute error, error relative to the map's range, and cosine."""
    report = {}
    for name, ref, out in zip(OUTPUT_NAMES, reference, candidate, strict=True):
        ref64, out64 = ref.astype(np.float64).ravel(), out.astype(np.float64).ravel()
        max_abs = float(np.abs(ref64 - out64).max())
        scale = float(np.abs(ref64).max()) or 1.0
        denom = np.linalg.norm(ref64) * np.linalg.norm(out64)
        cosine = float(ref64 @ out64 / denom) if denom else 1.0
        report[name] = {"max_abs": max_abs, "max_rel": max_abs / scale, "cosine": cosine}
    return report


def check_parity(
    head: HeadMaps,
    onnx_path: str | os.PathLike,
    images: np.ndarray,
    max_rel: float,
    threads: int,
) -> dict:
    """Run PyTorch and ONNX Runtime on the same preprocessed images and compare the 10 maps.

    Returns the parity record; raises ParityError (after the record is built) if any map's
    relative error exceeds `max_rel`.
    """
    from .runtime.onnxruntime_runner import OnnxRuntimeRunner

    with torch.inference_mode():
        reference = [t.numpy() for t in head.eval()(torch.from_numpy(images))]
    candidate = OnnxRuntimeRunner(onnx_path, threads=threads)(images)
    maps = compare_outputs(reference, candidate)
    worst = max(m["max_rel"] for m in maps.values())
    record = {
        "onnx": str(Path(onnx_path)),
        "images": int(images.shape[0]),
        "input_shape": list(images.shape),
        "tolerance_max_rel": max_rel,
        "worst_max_rel": worst,
        "pass": worst <= max_rel,
        "maps": maps,
    }
    return record


def parity_on_dataset(
    weights,
    model: dict,
    onnx_path,
    annotations,
    image_dir,
    record_path,
    num_images: int,
    max_rel: float,
    threads: int,
) -> dict:
    """Parity of `onnx_path` against the checkpoint on the first evaluation images; the record
    is written to `record_path` whether or not it passes, then a failure raises."""
    from .data.annotations import image_records, load_annotations
    from .data.images import preprocess_image
    from .io import write_json
    from .model.loading import load_head

    records = image_records(load_annotations(annotations), image_dir)[:num_images]
    size = (model["image_size"], model["image_size"])
    images = np.stack([preprocess_image(r.path, size, "pil") for r in records])
    head = load_head(weights, **model)
    record = check_parity(head, onnx_path, images, max_rel=max_rel, threads=threads)
    record["image_files"] = [r.path.name for r in records]
    write_json(record_path, record)
    if not record["pass"]:
        raise ParityError(
            f"{onnx_path} disagrees with PyTorch: worst relative error "
            f"{record['worst_max_rel']:.3g} > {setting_ref('max_rel')} = {max_rel:.3g}; "
            f"details in {record_path}"
        )
    return record
