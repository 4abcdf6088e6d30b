"""What a schema cannot say about a config: the files and folders it names must exist, and the
calibration split must not be the scored one. Checked when the workflow is parsed, so that such
a config fails before the first job runs, with the key, the value and what would be right."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse


def _local(value: str) -> Path | None:
    """The local path a URL-or-path value names (plain path or file://), None for a remote URL."""
    parsed = urlparse(value)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) <= 1:
        return Path(value)
    return None


def _mlperf_folder_problem(root: Path, layout: str, annotations: str) -> str | None:
    if not root.is_dir():
        return "is not a folder"
    if not (root / "annotations" / annotations).is_file():
        return f"has no annotations/{annotations}"
    if not (root / layout / "data").is_dir():
        return f"has no {layout}/data/ folder of images"
    return None


def config_problems(config: dict, resolve: Callable[[str], str] = str) -> list[str]:
    """One line per problem: `key: value ... what would be right`. `config` is complete
    (config/config.yaml holds every key); `resolve` turns a configured path into the path the
    rules will open (relative paths may name shipped files)."""
    problems = []
    weights = config["model"]["weights"]
    if weights["source"] == "local":
        path = Path(resolve(weights["path"]))
        if not path.is_file():
            problems.append(
                f"model.weights.path: {weights['path']} does not exist (model.weights.source is "
                "local): give a checkpoint file (a TorchScript .pth, a {'model': ...} checkpoint "
                "or a state dict), or set model.weights.source: zenodo to download it"
            )
    dataset = config["dataset"]
    if dataset["source"] == "local":
        root = dataset["local_root"]
        problem = (
            "is not set"
            if not root
            else _mlperf_folder_problem(Path(resolve(root)), "validation", "openimages-mlperf.json")
        )
        if problem:
            problems.append(
                f"dataset.local_root: {root} {problem} (dataset.source is local): give a folder "
                "in the MLPerf layout, <root>/annotations/openimages-mlperf.json and "
                "<root>/validation/data/*.jpg"
            )
    if dataset["source"] == "direct":
        for key, value in sorted(dataset["urls"].items()):
            local = _local(value)
            if local is not None and not Path(resolve(str(local))).exists():
                problems.append(
                    f"dataset.urls.{key}: {value} is neither an http(s) URL nor an existing "
                    "local path: give the URL, or the path of the file fetched by hand"
                )
    calibration = config["calibration"]
    if calibration["source"] == "demo":
        if dataset["source"] != "demo":
            problems.append(
                f"calibration.source: demo, but dataset.source is {dataset['source']}: the demo "
                "calibration split goes with the demo dataset; use calibration.source: mlperf"
            )
        elif calibration["seed"] == dataset["demo"]["seed"]:
            problems.append(
                f"calibration.seed: {calibration['seed']} is the seed of the evaluation split "
                "(dataset.demo.seed): calibration would see the images that are scored; pick "
                "another seed (the demo's is 3000)"
            )
    fetch = calibration["fetch"]
    if calibration["source"] == "mlperf" and fetch["source"] == "local":
        root = fetch["local_root"]
        problem = (
            "is not set"
            if not root
            else _mlperf_folder_problem(
                Path(resolve(root)), "calibration", "openimages-calibration-mlperf.json"
            )
        )
        if problem:
            problems.append(
                f"calibration.fetch.local_root: {root} {problem} (calibration.fetch.source is "
                "local): give a folder with annotations/openimages-calibration-mlperf.json and "
                "calibration/data/*.jpg"
            )
    preprocess, device = config["preprocess"], config["infer"]["device"]
    decode = preprocess["decode"]
    if decode in ("gpu", "gpu-resize") and preprocess["resize_kernel"] != "torch":
        problems.append(
            f"preprocess.decode: {decode} runs the torch kernel on the GPU, but "
            f"preprocess.resize_kernel is {preprocess['resize_kernel']}: set resize_kernel: "
            "torch, or decode: cpu"
        )
    if decode in ("gpu", "gpu-resize") and device != "cuda":
        problems.append(
            f"preprocess.decode: {decode} resizes on the GPU, but infer.device is {device}: "
            "set infer.device: cuda, or decode: cpu"
        )
    return problems


def resolver(basedir: str | os.PathLike) -> Callable[[str], str]:
    """Relative to the working directory if it exists there, else to the project (shipped files),
    as the rules resolve them."""

    def resolve(path: str) -> str:
        if os.path.isabs(path) or os.path.exists(path):
            return path
        return os.path.join(basedir, path)

    return resolve
