"""The TVM half of the demo DAG: calibration sampling, quantization, tuning, builds, fidelity
and the summary, then which jobs a config change plans (a small demo, for CI's time)."""

import csv
import json

import pytest
import yaml

from .workflow import ROOT, planned_jobs, snakemake, write_config

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
    assert float(rows["fp32"]["AP"]) > 0.5  # 0.928 in resources/demo/README.md: a floor
    # MLPerf's gate, recomputed from the map files the summary read: pass iff AP >= 99% of
    # the reference's AP (fp32, the first row)
    aps = {
        v: json.loads((workdir / f"results/map_{v}.json").read_text())["stats"]["AP"] for v in rows
    }
    for variant, row in rows.items():
        # the csv holds 6 decimals: rounding moves a figure by at most 5e-7
        assert float(row["AP"]) == pytest.approx(aps[variant], abs=5e-7), variant
        expected = "pass" if aps[variant] >= 0.99 * aps["fp32"] else "fail"
        assert row["gate"] == expected, (variant, aps[variant], aps["fp32"])
    assert rows["int8"]["int8_execution"] == "integer"  # integer convolutions, not simulated
    # the int8 build names its calibration set (its own split, seed 3000); the others none
    assert rows["int8"]["calibration"] == "demo (8 images, seed 3000)"
    assert all(rows[v]["calibration"] == "" for v in ("fp32", "onnx", "torch", "fp16"))
    text = (workdir / "results/summary.md").read_text()
    assert "| int8 *" in text and "99%" in text  # int8 rows are marked: how int8 runs


def test_builds_record_meta_and_fidelity(builds_run):
    workdir, _ = builds_run
    for build in ("fp32", "fp16", "int8"):
        meta = json.loads((workdir / f"builds/demo/{build}/meta.json").read_text())
        assert meta["precision"] == build and meta["target"]["kind"] == "llvm"
        fidelity = json.loads((workdir / f"builds/demo/{build}/fidelity.json").read_text())
        assert fidelity["images"] == 8  # the whole calibration list: fewer than max_images
        # written only when the build holds its precision's limit (the config's default)
        limits = yaml.safe_load((ROOT / "config/config.yaml").read_text())["fidelity"]["min_cosine"]
        assert fidelity["limit"] == {
            "min_cosine": limits[build],
            "config_key": f"fidelity.min_cosine.{build}",
        }
        assert fidelity["cosine_min"] >= limits[build]
    calibration = (workdir / "data/demo/calibration/demo.txt").read_text().split()
    assert len(calibration) == len(set(calibration)) == 8
    scored = json.loads((workdir / "data/demo/annotations.json").read_text())["images"]
    assert not set(calibration) & {img["file_name"] for img in scored}
    record = json.loads((workdir / "models/demo/head.int8-max.json").read_text())
    assert record["calibration"]["source"] == "demo" and record["calibration"]["images"] == 8


def test_rerun_does_nothing(builds_run):
    workdir, small = builds_run
    assert planned_jobs(workdir, "all", configfiles=[small]) == {}


def test_calibration_change_plans_only_the_int8_chain(builds_run, tmp_path):
    jobs = _changed(builds_run, tmp_path, calibration={"count": 6, "seed": 3})
    assert jobs == {
        "make_demo_calibration": 1,
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
