"""Variant -> runner: `open_runner` opens the runner of any variant (torch, onnx, onnx-int8, the
TVM builds) for inference, speed and LoadGen; `infer_variant` is the infer rule's step on it:
run the dataset, write the detections json, the per-image txt files, drawn images and timing
figures. The backends themselves are in runtime/."""

from __future__ import annotations

import os

from .data.annotations import class_names, image_records, load_annotations
from .infer import draw_detections, run_inference, write_detections_json, write_txt_files
from .io import write_json
from .postprocess import PostprocessSettings
from .runtime import HeadRunner, open_build


def open_runner(
    variant: str, path, model: dict, threads: int, device: str, batch_size: int | None = None
) -> HeadRunner:
    """The runner for a variant: `torch` runs the checkpoint in PyTorch eager; every other
    variant runs its build file (`onnx`: the ONNX model; TVM variants: the compiled .so)."""
    if variant == "torch":
        from .model.loading import load_head
        from .runtime.torch_runner import TorchRunner

        return TorchRunner(load_head(path, **model), threads=threads, device=device)
    return open_build(path, threads=threads, device=device, batch_size=batch_size)


def infer_variant(
    variant: str,
    runtime_path,
    annotations,
    image_dir,
    outputs: dict[str, str | os.PathLike],
    model: dict,
    resize_kernel: str,
    postprocess: dict,
    batch_size: int,
    device: str,
    threads: int,
    draw_images: int,
    draw_min_score: float,
) -> dict:
    """Write outputs["detections"], ["txt"], ["drawn"], ["stats"]; return the stats.

    The settings are the config's (preprocess.resize_kernel, postprocess, infer.*): no
    defaults here, config/config.yaml holds them.
    """
    data = load_annotations(annotations)
    records = image_records(data, image_dir)
    runner = open_runner(variant, runtime_path, model, threads, device, batch_size)
    results, stats = run_inference(
        records,
        runner,
        arch=model["arch"],
        image_size=model["image_size"],
        resize_kernel=resize_kernel,
        batch_size=batch_size,
        workers=threads,
        settings=PostprocessSettings(**postprocess),
    )
    names = class_names(data)
    write_detections_json(outputs["detections"], results)
    write_txt_files(outputs["txt"], results, names)
    draw_detections(outputs["drawn"], results, names, draw_images, draw_min_score)
    stats.update(variant=variant, threads=threads, batch_size=batch_size, device=runner.device)
    write_json(outputs["stats"], stats)
    return stats
