"""TVM Relax builds of a small demo head with random weights: fp32, fp16 and int8 (QDQ), the
meta file, the self-contained library, and MetaSchedule tuning."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import tvm

from retinaflow.compile import compile_head, default_target, resolve_target, target_json
from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.errors import DeviceError, SettingError
from retinaflow.export import export_head_onnx
from retinaflow.fidelity import fidelity_of_build
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.quantize import quantize_head
from retinaflow.runtime.onnxruntime_runner import OnnxRuntimeRunner
from retinaflow.runtime.tvm_runner import TvmRunner, build_device
from retinaflow.speed import open_speed_runner
from retinaflow.tuning import DATABASE_FILES, tune_head

from .configs import FP16_ACCUMULATE, OPSET, RESIZE_KERNEL, quantize_settings, tuning_settings

SIZE = 64
SHAPE = [1, 3, SIZE, SIZE]
FIDELITY = {"resize_kernel": RESIZE_KERNEL, "batch_size": 1, "threads": 1}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A demo head with Kaiming random weights (maps that vary, as a trained model's do), four
    demo images, the int8-max QDQ model and an untuned (trials=0) tuning database."""
    root = tmp_path_factory.mktemp("tvm")
    torch.manual_seed(0)
    model = build_retinanet("demo", 6, SIZE)
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        torch.nn.init.kaiming_normal_(conv.weight)
    onnx_path = root / "head.onnx"
    export_head_onnx(HeadMaps(model), onnx_path, SIZE, OPSET)
    make_demo_dataset(root / "demo", "val", 4)
    images = sorted((root / "demo" / "images").glob("*.jpg"))
    qdq = root / "head.int8-max.onnx"
    quantize_head(onnx_path, qdq, images, SIZE, **quantize_settings(method="max"))
    untuned = root / "tuning-0"
    tune_head(
        onnx_path, untuned, default_target(), trials=0, input_shape=SHAPE, **tuning_settings()
    )
    return {"root": root, "onnx": onnx_path, "images": images, "qdq": qdq, "untuned": untuned}


def _build(inputs, name, precision, source=None, tuning_dir=None):
    root = inputs["root"]
    so, meta = root / name / "module.so", root / name / "meta.json"
    compile_head(
        source or inputs["onnx"],
        so,
        meta,
        None,
        precision,
        SHAPE,
        tuning_dir=tuning_dir,
        fp16_accumulate=FP16_ACCUMULATE,
    )
    return so, json.loads(meta.read_text())


@pytest.fixture(scope="module")
def fp32(inputs):
    return _build(inputs, "fp32", "fp32", tuning_dir=inputs["untuned"])


@pytest.fixture(scope="module")
def fp16(inputs):
    return _build(inputs, "fp16", "fp16")


@pytest.fixture(scope="module")
def int8(inputs):
    return _build(inputs, "int8", "int8", source=inputs["qdq"])


def test_default_target_is_this_host():
    target = default_target()
    assert target["kind"] == "llvm"
    assert target["num-cores"] == len(os.sched_getaffinity(0))
    assert target_json(resolve_target("host"))["num-cores"] == target["num-cores"]
    with pytest.raises(ValueError, match="JSON dict"):
        resolve_target("llvm -mcpu=cascadelake")


def test_fp32_build_matches_onnxruntime(inputs, fp32):
    so, meta = fp32
    report = fidelity_of_build(so, inputs["onnx"], inputs["images"], SIZE, **FIDELITY)
    # the same float32 arithmetic in another summation order: relative noise ~1e-6 per layer
    # (sqrt of ~600 products x 2^-24), cosine 1 - 1e-10; the limits allow 100x that error
    # (0.4% noise/signal, 1e-4 of a map's range) and a wrong op or layout falls far outside
    assert report["cosine_min"] > 0.99999 and report["max_rel"] < 1e-4
    assert meta["tvm_version"] == tvm.__version__
    assert meta["target"] == target_json(resolve_target(None))
    assert meta["precision"] == "fp32" and meta["input_shape"] == SHAPE
    assert "FuseTIR" in meta["passes"] and "MetaScheduleApplyDatabase" in meta["passes"]
    assert meta["tuning_database"] == str(inputs["untuned"]) and meta["tuning_trials"] == 0
    assert meta["tuned_functions"] == 0
    assert meta["compile_seconds"] > 0 and meta["library_bytes"] == so.stat().st_size
    assert "int8_execution" not in meta


def test_untuned_database_is_empty_but_valid(inputs):
    folder = inputs["untuned"]
    assert all((folder / name).is_file() for name in DATABASE_FILES)
    assert (folder / DATABASE_FILES[1]).read_text().strip() == ""
    assert json.loads((folder / "tuning.json").read_text())["trials"] == 0


@pytest.mark.parametrize("runtime_only", [False, True], ids=["full-tvm", "tvm-runtime-only"])
def test_build_runs_alone_in_a_fresh_process(inputs, fp32, runtime_only):
    """The library carries its weights: a new process loads it and feeds images only. Also
    under TVM's runtime alone (TVM_USE_RUNTIME_LIB=1, no compiler library, no tvm.relax), as
    a GPU machine may hold it."""
    code = (
        "import sys, json, numpy as np, tvm\n"
        "from retinaflow.runtime.tvm_runner import TvmRunner\n"
        "maps = TvmRunner(sys.argv[1])(np.load(sys.argv[2]))\n"
        "print(json.dumps([tvm.base._RUNTIME_ONLY, [float(np.abs(m).sum()) for m in maps]]))\n"
    )
    images = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    np.save(inputs["root"] / "x.npy", images)
    env = {k: v for k, v in os.environ.items() if k != "TVM_USE_RUNTIME_LIB"}
    if runtime_only:
        env["TVM_USE_RUNTIME_LIB"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code, str(fp32[0]), str(inputs["root"] / "x.npy")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    was_runtime_only, sums = json.loads(out.stdout.strip().splitlines()[-1])
    assert was_runtime_only == runtime_only
    expected = [float(np.abs(m).sum()) for m in OnnxRuntimeRunner(inputs["onnx"])(images)]
    np.testing.assert_allclose(sums, expected, rtol=1e-4)


def test_wrong_input_shape_is_named(fp32):
    with pytest.raises(ValueError, match=r"\[2, 3, 64, 64\].*compiled for"):
        TvmRunner(fp32[0])(np.zeros([2, 3, SIZE, SIZE], np.float32))


def test_fp16_build_is_close_not_identical(inputs, fp16, fp32):
    so, meta = fp16
    report = fidelity_of_build(so, inputs["onnx"], inputs["images"], SIZE, **FIDELITY)
    # float16 rounds inputs and weights to 2^-11 relative, accumulating in float32: ~3e-4
    # noise per layer, under 0.5% over the head (cosine > 0.99999); 0.999 allows 4.5%
    assert report["cosine_min"] > 0.999
    # rounding the input alone to float16 moves values by up to 2^-12 ~ 2.4e-4 relative:
    # below 1e-5 (bit-equal to fp32, in effect) would mean fp16 was not applied
    assert report["max_rel"] > 1e-5
    assert any(p.startswith("ToMixedPrecision") for p in meta["passes"])
    assert meta["fp16_accumulate"] == "float32"
    assert so.stat().st_size < 0.75 * fp32[0].stat().st_size  # weights stored as float16


def test_int8_build_runs_integer_convs(inputs, int8):
    so, meta = int8
    assert meta["precision"] == "int8"
    assert meta["int8_execution"] == "integer"
    assert meta["conv_input_dtypes"] == ["uint8*int8"]
    assert meta["integer_convs"] > 0 and meta["float_convs"] == 0
    to_fp32 = fidelity_of_build(so, inputs["onnx"], inputs["images"], SIZE, **FIDELITY)
    # int8 rounding: a step of range/255 per tensor (half a step ~2e-3 of the range at the
    # outputs alone), ~1% noise per layer, ~5% over the head (cosine ~0.9987); 0.98 allows
    # 20% (see tests/test_quantize.py). Under 1e-3 would mean no rounding happened.
    # (Exactness against ONNX Runtime's int8 kernels: tests/test_integer_convs.py.)
    assert to_fp32["max_rel"] > 1e-3 and to_fp32["cosine_min"] > 0.98


def test_database_of_another_shape_is_refused(inputs, tmp_path):
    with pytest.raises(ValueError, match="input_shape"):
        compile_head(
            inputs["onnx"],
            tmp_path / "m.so",
            tmp_path / "m.json",
            None,
            "fp32",
            [1, 3, 96, 96],
            tuning_dir=inputs["untuned"],
            fp16_accumulate=FP16_ACCUMULATE,
        )
    assert not (tmp_path / "m.so").exists()


@pytest.mark.slow
def test_tuning_fills_the_database_and_compile_applies_it(inputs):
    folder = inputs["root"] / "tuning-4"
    tuning = tune_head(
        inputs["onnx"], folder, None, trials=4, input_shape=SHAPE, **tuning_settings()
    )
    assert tuning["tasks"] > 10 and tuning["records"] >= 1
    assert (folder / DATABASE_FILES[1]).stat().st_size > 0
    assert not list(inputs["root"].glob(".tmp-*"))
    so, meta = _build(inputs, "fp32-tuned", "fp32", tuning_dir=folder)
    assert meta["tuning_trials"] == 4 and meta["tuned_functions"] >= 1
    report = fidelity_of_build(so, inputs["onnx"], inputs["images"], SIZE, **FIDELITY)
    assert report["cosine_min"] > 0.99999


def test_int8_methods_share_their_convolution_workloads(inputs):
    """One int8 database serves every calibration method: the QDQ models differ only in
    scales and zero points, which TVM folds into the TIR as literals. Keyed by the whole fused
    function (structural) most convolution workloads differ; keyed by their anchor block (what
    tuning and compile use on a target without VNNI) a kl build finds every convolution
    workload of a max database."""
    from tvm.s_tir import meta_schedule as ms

    from retinaflow.compile import ANCHOR_BLOCK, module_equality, prepare_head

    kl = inputs["root"] / "head.int8-kl.onnx"
    quantize_head(inputs["onnx"], kl, inputs["images"], SIZE, **quantize_settings(method="kl"))
    target = resolve_target({"kind": "llvm", "num-cores": 2})  # x86-64 without VNNI
    assert module_equality(target) == ANCHOR_BLOCK
    mods = {
        m: prepare_head(p, SHAPE, "int8", target)[0]
        for m, p in (("max", inputs["qdq"]), ("kl", kl))
    }

    def found(equality, tmp):
        tasks = {
            m: ms.relax_integration.extract_tasks(mod, target, module_equality=equality)
            for m, mod in mods.items()
        }
        database = ms.database.JSONDatabase(work_dir=str(tmp), module_equality=equality)
        for task in tasks["max"]:
            database.commit_workload(task.dispatched[0])
        convs = [t for t in tasks["kl"] if "conv2d" in t.task_name]
        return sum(database.has_workload(t.dispatched[0]) for t in convs), len(convs)

    (inputs["root"] / "db-structural").mkdir()
    (inputs["root"] / "db-anchor").mkdir()
    hits, convs = found("structural", inputs["root"] / "db-structural")
    assert hits < convs  # the literals differ
    hits, convs = found(ANCHOR_BLOCK, inputs["root"] / "db-anchor")
    assert convs > 10 and hits == convs


def test_int8_methods_share_their_packed_convolutions_on_a_vnni_target(inputs):
    """On a VNNI target workloads are keyed structurally (compile.module_equality), and still
    every calibration finds every convolution: a packed conv's function holds no literal
    scale or zero point (they are per-channel tensor arguments)."""
    from tvm.s_tir import meta_schedule as ms

    from retinaflow.compile import STRUCTURAL, module_equality, prepare_head

    kl = inputs["root"] / "head.int8-kl.onnx"
    if not kl.exists():
        quantize_head(inputs["onnx"], kl, inputs["images"], SIZE, **quantize_settings(method="kl"))
    target = resolve_target({"kind": "llvm", "mcpu": "cascadelake", "num-cores": 2})
    assert module_equality(target) == STRUCTURAL
    tasks = {
        m: ms.relax_integration.extract_tasks(
            prepare_head(p, SHAPE, "int8", target)[0], target, module_equality=STRUCTURAL
        )
        for m, p in (("max", inputs["qdq"]), ("kl", kl))
    }
    (inputs["root"] / "db-vnni").mkdir()
    database = ms.database.JSONDatabase(
        work_dir=str(inputs["root"] / "db-vnni"), module_equality=STRUCTURAL
    )
    for task in tasks["max"]:
        database.commit_workload(task.dispatched[0])
    convs = [t for t in tasks["kl"] if "conv2d_vnni" in t.task_name]
    assert len(convs) > 10
    assert all(database.has_workload(t.dispatched[0]) for t in convs)


CUDA_TARGET = {"kind": "cuda", "arch": "sm_90"}  # an H100/H200


def test_a_cuda_build_is_made_without_a_gpu_and_refused_on_the_cpu(inputs, tmp_path):
    """compile.target cuda on this machine without a GPU: TVM's CUDA pipeline (dlight's
    default schedules) builds the int8 head, integer convolutions kept; with no CUDA driver to
    compile them here the kernels travel as CUDA source, compiled by the GPU machine's TVM
    when it loads the library. The runner refuses the build on the CPU by name, and tuning
    for a CUDA target is refused (MetaSchedule would time candidates on a GPU)."""
    so, meta_json = tmp_path / "int8" / "module.so", tmp_path / "int8" / "meta.json"
    compile_head(
        inputs["qdq"], so, meta_json, CUDA_TARGET, "int8", SHAPE, fp16_accumulate=FP16_ACCUMULATE
    )
    meta = json.loads(meta_json.read_text())
    assert meta["target"]["kind"] == "cuda" and meta["target"]["arch"] == "sm_90"
    assert meta["passes"][-1].startswith("relax default CUDA pipeline")
    assert meta["int8_execution"] == "integer" and meta["conv_input_dtypes"] == ["uint8*int8"]
    assert meta["intrinsic"] == "none"
    assert so.stat().st_size == meta["library_bytes"] > 0
    if tvm.get_global_func("ffi.Module.create.cuda", allow_missing=True) is None:  # no driver
        assert meta["device_code"].startswith("CUDA C source")
        # the kernels' source is in the library (TVM emits each as extern "C" __global__)
        assert b'extern "C" __global__' in so.read_bytes()
    with pytest.raises(DeviceError, match=r"compiled for cuda .* asked to run on 'cpu'"):
        TvmRunner(so, device="cpu")
    # the speed and fidelity steps open it on its GPU: here, no GPU (or no driver) by name
    assert build_device("tvm", so) == "cuda" and build_device("onnx", so) == "cpu"
    with pytest.raises(DeviceError, match="CUDA"):
        open_speed_runner("int8", so, {}, 1, SHAPE[0])
    with pytest.raises(SettingError, match="0 for a CUDA target"):
        tune_head(
            inputs["onnx"],
            tmp_path / "tuned",
            CUDA_TARGET,
            trials_per_task=2,
            input_shape=SHAPE,
            **tuning_settings(),
        )
    assert not (tmp_path / "tuned").exists()
