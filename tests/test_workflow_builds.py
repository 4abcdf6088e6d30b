"""The TVM half of the demo DAG: calibration sampling, quantization, tuning, builds, fidelity
and the summary, then which jobs a config change plans (a small demo, for CI's time)."""

import csv
import json

import pytest

from .workflow import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow
SMALL = {"dataset": {"demo": {"num_images": 24}}, "calibration": {"count": 8}}


@pytest.fixture(scope="module")
def builds_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("builds-run")
    small = write_config(workdir / "small.yaml", SMALL)
    snakemake(workdir, "--", "all", configfiles=[small])
    return workdir, small


def _changed(builds_run, tmp_path, **sections):
    workdir, _ = builds_run
    overrides = json.loads(json.dumps(SMALL))
    for key, value in sections.items():
        overrides.setdefault(key, {}).update(value)
    change = write_config(tmp_path / "changed.yaml", overrides)
    return planned_jobs(workdir, "all", configfiles=[change])


def test_summary_compares_every_variant(builds_run):
    workdir, _ = builds_run
    rows = {r["variant"]: r for r in csv.DictReader(open(workdir / "results/summary.csv"))}
    assert list(rows) == ["fp32", "onnx", "torch", "fp16", "int8"]  # the reference first
    assert abs(float(rows["fp32"]["AP"]) - float(rows["onnx"]["AP"])) < 2e-3
    assert float(rows["fp32"]["AP"]) > 0.5
    assert all(rows[v]["gate"] in {"pass", "fail"} for v in rows)
    assert "simulated" in rows["int8"]["int8_execution"]
    text = (workdir / "results/summary.md").read_text()
    assert "| int8 *" in text and "99%" in text  # int8 rows are marked: simulated


def test_builds_record_meta_and_fidelity(builds_run):
    workdir, _ = builds_run
    for build in ("fp32", "fp16", "int8"):
        meta = json.loads((workdir / f"builds/demo/{build}/meta.json").read_text())
        assert meta["precision"] == build and meta["target"]["kind"] == "llvm"
        fidelity = json.loads((workdir / f"builds/demo/{build}/fidelity.json").read_text())
        assert fidelity["images"] == 8  # the whole calibration list: fewer than max_images
        assert fidelity["cosine_min"] > (0.99999 if build == "fp32" else 0.98)
    calibration = (workdir / "data/demo/calibration/random.txt").read_text().split()
    assert len(calibration) == len(set(calibration)) == 8


def test_rerun_does_nothing(builds_run):
    workdir, small = builds_run
    assert planned_jobs(workdir, "all", configfiles=[small]) == {}


def test_calibration_change_plans_only_the_int8_chain(builds_run, tmp_path):
    jobs = _changed(builds_run, tmp_path, calibration={"count": 6, "seed": 3})
    assert jobs == {
        "sample_calibration": 1,
        "quantize_head": 1,
        "tune_head": 1,
        "compile_head": 1,
        "infer": 1,
        "score_detections": 1,
        # every build's fidelity is measured on the calibration images
        "measure_fidelity": 3,
        "summarize_variants": 1,
        "all": 1,
    }


def test_target_change_plans_builds_and_after_not_export(builds_run, tmp_path):
    target = {"kind": "llvm", "num-cores": 2}
    jobs = _changed(builds_run, tmp_path, compile={"target": target})
    assert jobs == {
        "tune_head": 3,
        "compile_head": 3,
        "measure_fidelity": 3,
        "infer": 3,
        "score_detections": 3,
        "summarize_variants": 1,
        "all": 1,
    }


def test_trial_budget_change_plans_tuning_and_after(builds_run, tmp_path):
    jobs = _changed(builds_run, tmp_path, compile={"tuning": {"trials": 4}})
    assert "export_head" not in jobs and "quantize_head" not in jobs
    assert jobs["tune_head"] == 3 and jobs["compile_head"] == 3
