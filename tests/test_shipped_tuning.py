"""The tuning databases the package ships (retinaflow.shipped_tuning): which one a target
takes, that each holds every convolution of the demo int8 head as the code builds it today
(a change to the integer rewrite or the VNNI layout that moves the workloads fails here: re-run
scripts/tune_shipped_database.py), and that a build with one is tuned, integer and right."""

import gzip
import json
import logging

import numpy as np
import pytest

from retinaflow.compile import compile_head, prepare_head, resolve_target
from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.export import export_head_onnx, simplify_onnx
from retinaflow.io import write_json
from retinaflow.model.loading import load_head
from retinaflow.quantize import quantize_head
from retinaflow.runtime.tvm_runner import TvmRunner
from retinaflow.shipped_tuning import (
    ISA_AVX2,
    ISA_VNNI,
    META,
    choose,
    copy_database,
    coverage,
    digest,
    shipped_root,
    target_isa,
)
from retinaflow.tuning import tune_head

from .configs import FP16_ACCUMULATE, OPSET, quantize_settings, tuning_settings
from .workflow import ROOT

SIZE = 320
SHAPE = [1, 3, SIZE, SIZE]
# one CPU of each class, as LLVM names them (compiling for them runs nothing)
TARGETS = {
    ISA_VNNI: {"kind": "llvm", "mcpu": "cascadelake", "num-cores": 2},
    ISA_AVX2: {"kind": "llvm", "mcpu": "haswell", "num-cores": 2},
}
NO_MCPU = {"kind": "llvm", "num-cores": 2}  # generic x86-64: neither class


def _fake_shipped(root, isa, model="demo"):
    folder = root / f"{model}-int8-{SIZE}-{isa}"
    folder.mkdir(parents=True)
    meta = {"model": model, "isa": isa, "precision": "int8", "input_shape": SHAPE}
    write_json(folder / META, {**meta, "trials": 16, "tuned_on": "test"})
    return folder


def test_target_isa_classes():
    assert target_isa(resolve_target(TARGETS[ISA_VNNI])) == ISA_VNNI
    assert target_isa(resolve_target({"kind": "llvm", "mcpu": "znver4"})) == ISA_VNNI
    assert target_isa(resolve_target(TARGETS[ISA_AVX2])) == ISA_AVX2
    assert target_isa(resolve_target({"kind": "llvm", "mcpu": "skylake-avx512"})) == ISA_AVX2
    assert target_isa(resolve_target(NO_MCPU)) is None


def test_choose_takes_the_database_of_the_targets_class(tmp_path):
    vnni, avx2 = _fake_shipped(tmp_path, ISA_VNNI), _fake_shipped(tmp_path, ISA_AVX2)
    for isa, folder, other in ((ISA_VNNI, vnni, avx2), (ISA_AVX2, avx2, vnni)):
        choice = choose("demo", "int8", SHAPE, resolve_target(TARGETS[isa]), tmp_path)
        assert choice.path == folder
        # the other class's database is named, with why it is not used
        assert any(other.name in m and "ignored" in m for m in choice.messages)

    choice = choose("demo", "int8", SHAPE, resolve_target(NO_MCPU), tmp_path)
    assert choice.path is None
    ignored = [m for m in choice.messages if "ignored" in m]
    assert len(ignored) == 2 and all("neither AVX2 nor AVX-512 VNNI" in m for m in ignored)

    for model, precision, shape in (("other", "int8", SHAPE), ("demo", "fp32", SHAPE)):
        choice = choose(model, precision, shape, resolve_target(TARGETS[ISA_VNNI]), tmp_path)
        assert choice.path is None and "no shipped tuning database" in choice.messages[0]


def test_the_package_ships_both_classes():
    shipped = {json.loads((p / META).read_text())["isa"]: p for p in shipped_root().iterdir()}
    assert set(shipped) == {ISA_VNNI, ISA_AVX2}
    for folder in shipped.values():
        meta = json.loads((folder / META).read_text())
        assert (meta["model"], meta["precision"], meta["input_shape"]) == ("demo", "int8", SHAPE)
        assert meta["trials"] > 0 and meta["tasks"] > 0 and "command" in meta
        with gzip.open(folder / "database_tuning_record.json.gz", "rt") as table:
            records = table.read().splitlines()
        assert len(records) == meta["tasks"]  # pruned: the best record of each workload


@pytest.fixture(scope="module")
def demo_qdq(tmp_path_factory):
    """The demo model's int8 head as the DAG makes it: the shipped weights, exported,
    simplified and calibrated (on 8 demo images of the calibration seed: any calibration
    gives the same convolution workloads, which is what the shipped databases rely on)."""
    root = tmp_path_factory.mktemp("shipped")
    head = load_head(ROOT / "resources/demo/retinanet_demo.pt", "demo", 6, SIZE)
    export_head_onnx(head, root / "head.onnx", SIZE, OPSET)
    simplify_onnx(root / "head.onnx", root / "head.sim.onnx")
    make_demo_dataset(root / "calibration", "val", 8, seed=3000)
    images = sorted((root / "calibration" / "images").glob("*.jpg"))
    quantize_head(
        root / "head.sim.onnx",
        root / "head.int8-max.onnx",
        images,
        SIZE,
        **quantize_settings(resize_kernel="pil", method="max"),
    )
    return {"root": root, "qdq": root / "head.int8-max.onnx", "images": images}


@pytest.mark.parametrize("isa", [ISA_VNNI, ISA_AVX2])
def test_shipped_database_holds_every_convolution_of_the_demo_head(demo_qdq, isa, tmp_path):
    target = resolve_target(TARGETS[isa])
    mod, _ = prepare_head(demo_qdq["qdq"], SHAPE, "int8", target)
    folder = choose("demo", "int8", SHAPE, target).path
    copy_database(folder, tmp_path)
    held, total = coverage(mod, target, tmp_path)
    assert total >= 20 and held == total, f"{folder.name}: {held} of {total} convolution tasks"


def test_tuning_starts_from_the_shipped_database_and_builds_tuned(demo_qdq, caplog):
    """trials_per_task 0 with shipped databases on: the database of this host's class, and a
    build that schedules every convolution with it (integer, VNNI-tensorized on a VNNI CPU)
    and computes what the untuned build computes."""
    host = resolve_target(None)
    isa = target_isa(host)
    if isa is None:
        pytest.skip(f"this CPU ({host}) is in neither shipped class")  # not x86 with AVX2
    root = demo_qdq["root"]
    caplog.set_level(logging.INFO, logger="retinaflow.tuning")
    meta = tune_head(
        demo_qdq["qdq"],
        root / "tuning",
        None,
        trials_per_task=0,
        input_shape=SHAPE,
        model="demo",
        **tuning_settings(precision="int8", use_shipped=True),
    )
    shipped = meta["shipped_database"]
    assert shipped["isa"] == isa and meta["trials"] == shipped["trials"] > 0
    assert shipped["convolution_tasks_held"] == shipped["convolution_tasks"]
    assert any("holds" in r.getMessage() for r in caplog.records)
    builds = {}
    for name, tuning in (("shipped", root / "tuning"), ("untuned", None)):
        so, meta_json = root / name / "module.so", root / name / "meta.json"
        compile_head(
            demo_qdq["qdq"],
            so,
            meta_json,
            None,
            "int8",
            SHAPE,
            tuning_dir=tuning,
            fp16_accumulate=FP16_ACCUMULATE,
        )
        builds[name] = (so, json.loads(meta_json.read_text()))
    meta = builds["shipped"][1]
    assert meta["int8_execution"] == "integer" and meta["tuning_trials"] == shipped["trials"]
    assert meta["tuned_functions"] >= shipped["convolution_tasks"]
    if isa == ISA_VNNI:
        assert meta["intrinsic"] == "vnni" and meta["vnni_tensorized_functions"] > 0
    batch = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    tuned, untuned = (TvmRunner(builds[n][0], threads=2)(batch) for n in ("shipped", "untuned"))
    # integer convs give the same int32 sums in any loop order, and the float epilogue is the
    # same ops on the same values: the schedule changes the order of work, not the result
    for a, b in zip(tuned, untuned, strict=True):
        np.testing.assert_array_equal(a, b)


def test_database_of_another_class_is_ignored_with_a_message(demo_qdq, caplog):
    caplog.set_level(logging.INFO, logger="retinaflow.tuning")
    meta = tune_head(
        demo_qdq["qdq"],
        demo_qdq["root"] / "tuning-generic",
        target=NO_MCPU,
        trials_per_task=0,
        input_shape=SHAPE,
        model="demo",
        **tuning_settings(precision="int8", use_shipped=True),
    )
    assert meta["shipped_database"] is None and meta["trials"] == 0 and meta["records"] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("ignored" in m and "neither AVX2 nor AVX-512 VNNI" in m for m in messages) == 2


def test_digest_follows_the_shipped_files(tmp_path):
    """The tune rule's param: a changed shipped database must change it (and rerun tuning)."""
    folder = _fake_shipped(tmp_path, ISA_VNNI)
    before = digest(tmp_path)
    assert digest(tmp_path) == before  # stable
    (folder / "database_tuning_record.json.gz").write_bytes(b"other records")
    after = digest(tmp_path)
    assert after != before
    (folder / "database_tuning_record.json.gz").write_bytes(b"yet other records")
    assert digest(tmp_path) not in (before, after)
    assert len(digest()) == 64  # the package's own
