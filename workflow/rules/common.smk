"""Config validation, wildcard constraints, paths and input functions shared by all rules."""

import os
import sys

from snakemake.utils import validate

from retinaflow.calibration import calibration_set
from retinaflow.config_checks import config_problems, resolver

# The schema checks types, choices and ranges and fills nothing in: config/config.yaml (the
# Snakefile's configfile, which every --configfile is merged over) holds every default.
validate(
    config, workflow.source_path("../schemas/config.schema.yaml"), set_default=False
)
# What the schema cannot say (files the config names exist, the calibration split is not the
# scored one): checked here, before the first job runs.
_problems = config_problems(config, resolver(workflow.basedir))
if _problems:
    sys.exit("retinaflow: invalid config:\n  " + "\n  ".join(_problems))

DATASET = config["dataset"]["name"]
MODEL = config["model"]["name"]
# onnx: ONNX Runtime on the export (the fp32 reference); onnx-int8: ONNX Runtime on the QDQ
# model of quantize.method (the int8 peer); torch, torch-fp16, torch-bf16: PyTorch on the
# checkpoint in fp32, fp16, bf16 (the pytorch section: how on CUDA), torch-int8 on its int8
# build (the heads in int8 Triton kernels: a GPU variant); the rest are TVM builds
# (int8: the method quantize.method names; int8-<method>: each one).
TVM_VARIANTS = ("fp32", "fp16", "int8", "int8-max", "int8-kl", "int8-percentile")
TORCH_VARIANTS = ("torch", "torch-fp16", "torch-bf16", "torch-int8")
ALL_VARIANTS = ("onnx", "onnx-int8", *TORCH_VARIANTS, *TVM_VARIANTS)
VARIANTS = config["summary"]["variants"]
INT8_METHODS = ("max", "kl", "percentile")
PRECISIONS = ("fp32", "fp16", "int8")
SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")


def alternation(names):
    """A wildcard regex of names, longest first (onnx-int8 before onnx, int8-kl before int8)."""
    return "|".join(sorted(names, key=len, reverse=True))


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.-]+",
    model=r"[A-Za-z0-9_.-]+",
    variant=alternation(ALL_VARIANTS),
    build=alternation(TVM_VARIANTS),
    precision=alternation(PRECISIONS),
    method=alternation(INT8_METHODS),
    scenario=alternation(SCENARIOS),


# Inference shards (infer.smk): Snakemake's scatter/gather names them 1-of-N .. N-of-N.
SHARDS = config["infer"]["shards"]


scattergather:
    infer=SHARDS,


if len(scatter.infer("{scatteritem}")) != SHARDS:
    sys.exit(
        f"retinaflow: the number of inference shards is infer.shards ({SHARDS} here: set it "
        "in a --configfile, `infer: {shards: N}`), not --set-scatter"
    )


def shard_gpus(wildcards):
    """A shard takes a GPU when inference runs on one: locally `--resources gpu=2` then runs
    two shards at once (each picks cuda:{index % GPUs it sees}, retinaflow.shards), and
    under SLURM it is submitted with --gpus=1 (SLURM's CUDA_VISIBLE_DEVICES: its own GPU).
    """
    return 1 if config["infer"]["device"] == "cuda" else 0


# Peak memory per step in MB: the max_rss of the demo run's benchmark files and of a probe of
# the MLPerf architecture at 800x800 (batch 8), with ~1.5x headroom. Cluster profiles use them.
MEM_MB = {
    "demo": {"data": 500, "weights": 1000, "export": 1500, "simplify": 1500, "infer": 1500,
             "score": 1000, "quantize": 3000, "compile": 3000, "speed": 3000},
    "resnext50_32x4d_fpn": {"data": 4000, "weights": 3000, "export": 4000, "simplify": 3000,
                            "infer": 6000, "score": 8000, "quantize": 16000, "compile": 12000,
                            "speed": 16000},
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
    """The artifact a variant runs: the checkpoint (torch*), its int8 build (torch-int8), the
    ONNX export (onnx), the QDQ model of quantize.method (onnx-int8), or the TVM build. Paths
    without a {model} wildcard (results/perf_*) mean the configured model.
    """
    return variant_artifact(wildcards.variant, getattr(wildcards, "model", MODEL))


def variant_artifact(variant, model=MODEL):
    if variant == "torch-int8":
        return f"models/{model}/torch-int8.pt"
    if variant in TORCH_VARIANTS:
        return f"models/{model}/weights.pt"
    if variant == "onnx":
        return f"models/{model}/head.sim.onnx"
    if variant == "onnx-int8":
        return f"models/{model}/head.int8-{config['quantize']['method']}.onnx"
    return f"builds/{model}/{variant}/module.so"


def int8_method(build):
    """int8 and onnx-int8 -> the configured method; int8-kl -> kl; None for fp32/fp16/onnx."""
    if build in ("int8", "onnx-int8"):
        return config["quantize"]["method"]
    return build.split("-", 1)[1] if build.startswith("int8-") else None


def precision(build):
    return "int8" if build.startswith("int8") else build


def build_onnx(wildcards):
    """The model a TVM build compiles: the fp32 export, or the QDQ model of its method."""
    method = int8_method(wildcards.build)
    if method is None:
        return f"models/{wildcards.model}/head.sim.onnx"
    return f"models/{wildcards.model}/head.int8-{method}.onnx"


def tuning_onnx(wildcards):
    """The model a precision's shared database is tuned on: the fp32 export, or for int8 the
    QDQ model of quantize.method (the other methods' builds differ only in the scales and zero
    points, which anchor-block workload keys ignore: see retinaflow/tuning.py)."""
    if wildcards.precision == "int8":
        return f"models/{wildcards.model}/head.int8-{config['quantize']['method']}.onnx"
    return f"models/{wildcards.model}/head.sim.onnx"


def shipped_tuning_digest(wildcards):
    """The shipped tuning databases' digest when the config starts from them: a package update
    that changes one reruns tuning (retinaflow.shipped_tuning)."""
    if not config["compile"]["tuning"]["shipped"]:
        return None
    from retinaflow.shipped_tuning import digest

    return digest()


def tuning_dir(wildcards):
    """The MetaSchedule database a build compiles with: one per (model, precision)."""
    return f"builds/{wildcards.model}/tuning-{precision(wildcards.build)}"


def infer_batch_size(wildcards):
    """TVM builds run the batch they were compiled for; the other runtimes the infer batch."""
    if wildcards.variant in TVM_VARIANTS:
        return config["compile"]["batch"]
    return config["infer"]["batch_size"]


def torch_settings(wildcards):
    """The config's pytorch section for a PyTorch variant (its change reruns only those), None
    for the others."""
    return config["pytorch"] if wildcards.variant in TORCH_VARIANTS else None


def build_input_shape():
    size = config["model"]["image_size"]
    return [config["compile"]["batch"], 3, size, size]


def calibration_files(wildcards=None):
    """The calibration list and the folder its images are in: a split of its own, never the
    evaluation split (mlperf: MLPerf's train-split list; demo: the demo's calibration split).
    """
    source = config["calibration"]["source"]
    return {
        "calibration": f"data/{DATASET}/calibration/{source}.txt",
        "calibration_images": f"data/{DATASET}/calibration/{source}/images",
    }


def calibration_description():
    """The calibration set, as quantize records and the summary name it."""
    c = config["calibration"]
    if c["source"] == "mlperf":
        return calibration_set("mlperf", 500)
    return calibration_set("demo", c["count"], c["seed"])


def quantize_records():
    """{int8 variant: its quantize record} for the summary's calibration column (the TVM int8
    builds and onnx-int8)."""
    return {
        v: f"models/{MODEL}/head.int8-{int8_method(v)}.json"
        for v in VARIANTS
        if int8_method(v) is not None
    }


def tvm_builds():
    """The TVM builds among the summary's variants."""
    return [v for v in VARIANTS if v in TVM_VARIANTS]


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


def report_perf_records():
    """{variant/scenario: its LoadGen record} for the report's latency plot: every summary
    variant in each of report.scenarios."""
    return {
        f"{v}/{s}": f"results/perf_{v}_{s}.json"
        for v in VARIANTS
        for s in config["report"]["scenarios"]
    }


def fiftyone_dataset_name():
    """The persistent FiftyOne dataset of a (dataset, model): retinaflow-demo-demo."""
    return f"retinaflow-{DATASET}-{MODEL}"
