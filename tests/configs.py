"""The configured values tests run library code with. Library functions take the config's
values without defaults of their own; config/config.yaml holds every setting and its default,
and config/demo.yaml, merged over it as Snakemake merges a --configfile, what the demo (its
model, its 320x320 input, PIL resizing) changes."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG_YAML = ROOT / "config" / "config.yaml"
DEMO_YAML = ROOT / "config" / "demo.yaml"


def merge(base: dict, overlay: dict) -> dict:
    """`overlay` merged into a copy of `base`, nested sections key by key (Snakemake's way)."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(*overlays: str | Path) -> dict:
    """config/config.yaml with each overlay file merged over it, left to right."""
    config = yaml.safe_load(CONFIG_YAML.read_text())
    for overlay in overlays:
        config = merge(config, yaml.safe_load(Path(overlay).read_text()) or {})
    return config


REAL = load_config()  # the real benchmark: config/config.yaml alone
DEMO = load_config(DEMO_YAML)  # the demo: config/demo.yaml over it

OPSET = DEMO["export"]["opset"]
RESIZE_KERNEL = DEMO["preprocess"]["resize_kernel"]
MAX_DETECTIONS = DEMO["score"]["max_detections"]
FP16_ACCUMULATE = DEMO["compile"]["fp16_accumulate"]


def quantize_settings(**changes) -> dict:
    """quantize_head's settings: the demo's resize kernel and quantize section, then `changes`."""
    return {"resize_kernel": RESIZE_KERNEL, **DEMO["quantize"], **changes}


def tuning_settings(**changes) -> dict:
    """tune_head's configured settings (compile.*, compile.tuning.*) but the input shape: fp32,
    not starting from a shipped database; then `changes`."""
    tuning = DEMO["compile"]["tuning"]
    return {
        "precision": "fp32",
        "fp16_accumulate": DEMO["compile"]["fp16_accumulate"],
        "trials_per_iter": tuning["trials_per_iter"],
        "seed": tuning["seed"],
        "tasks": tuning["tasks"],
        "use_shipped": False,
        **changes,
    }


def postprocess_settings(**changes):
    """A PostprocessSettings of the config's postprocess section (MLPerf's values), then
    `changes`."""
    from retinaflow.postprocess import PostprocessSettings

    return PostprocessSettings(**{**DEMO["postprocess"], **changes})


def download_settings(**changes):
    """A DownloadSettings of the config's dataset.download section, then `changes`."""
    from retinaflow.data.openimages.settings import DownloadSettings

    return DownloadSettings.from_config({**DEMO["dataset"]["download"], **changes})


def as_configured(err, *sections: str, **keys: str) -> str:
    """A user error's message as a workflow job shows it: each setting it names resolved to
    its config key (scripting.config_keys over the real config)."""
    from retinaflow.scripting import config_keys

    return str(err.named(config_keys(REAL, *sections, **keys)))
