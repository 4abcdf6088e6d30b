"""Config validation, wildcard constraints, paths and input functions shared by all rules."""

import os

from snakemake.utils import validate

validate(config, workflow.source_path("../schemas/config.schema.yaml"))

DATASET = config["dataset"]["name"]
MODEL = config["model"]["name"]
VARIANTS = ("onnx", "torch")


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.-]+",
    model=r"[A-Za-z0-9_.-]+",
    variant="|".join(VARIANTS),


# Peak memory per step in MB: the max_rss of the demo run's benchmark files and of a probe of
# the MLPerf architecture at 800x800 (batch 8), with ~1.5x headroom. Cluster profiles use them.
MEM_MB = {
    "demo": {"data": 500, "weights": 1000, "export": 1500, "simplify": 1500, "infer": 1500,
             "score": 1000},
    "resnext50_32x4d_fpn": {"data": 4000, "weights": 3000, "export": 4000, "simplify": 3000,
                            "infer": 6000, "score": 8000},
}  # fmt: skip


def mem_mb(step):
    return MEM_MB[config["model"]["arch"]][step]


def dataset_files(wildcards=None):
    """The evaluation split: annotations json and image folder."""
    return {
        "annotations": f"data/{DATASET}/annotations.json",
        "images": f"data/{DATASET}/images",
    }


def runtime_input(wildcards):
    """The artifact a variant runs: the simplified ONNX, or the checkpoint for PyTorch."""
    if wildcards.variant == "torch":
        return f"models/{wildcards.model}/weights.pt"
    return f"models/{wildcards.model}/head.sim.onnx"


def model_params():
    """What defines the network: any change reruns export and everything after it."""
    m = config["model"]
    return {
        "arch": m["arch"],
        "num_classes": m["num_classes"],
        "image_size": m["image_size"],
    }


def local_path(path):
    """A config path: relative to the working directory, else to the project (shipped files)."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    return os.path.join(workflow.basedir, path)


def weights_input():
    """A local checkpoint is an input (its change reruns the chain); a download is not."""
    weights = config["model"]["weights"]
    return [local_path(weights["path"])] if weights["source"] == "local" else []
