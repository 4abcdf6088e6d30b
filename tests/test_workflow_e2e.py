"""The demo DAG end to end, as a user runs it: results, no-op rerun, and staleness."""

import filecmp
import json
import shutil
import time

import pytest

from .workflow import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow
TARGETS = ("results/map_onnx.json", "results/map_torch.json")


def test_demo_dag_scores_the_trained_model(demo_run):
    workdir, _ = demo_run
    onnx = json.loads((workdir / "results/map_onnx.json").read_text())
    torch_ = json.loads((workdir / "results/map_torch.json").read_text())
    assert onnx["num_images"] == 200
    # resources/demo/README.md: 0.928 on this val split; 0.5 is a floor far below what any
    # CPU's kernels give, which a broken pipeline (boxes, classes or scaling) cannot reach
    assert onnx["bbox_mAP"] >= 0.5
    for key in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l"):
        assert 0 < onnx[key] <= 1, key
        # same network, two runtimes: maps agree to ~1e-6 relative, so only near-tied scores
        # can swap ranks; 2e-3 of AP allows a handful of such swaps and no real difference
        assert abs(onnx[key] - torch_[key]) < 2e-3, key
    assert len(onnx["stats"]) == 12
    assert onnx["bbox_mAP_copypaste"].split()[0] == f"{onnx['bbox_mAP']:.3f}"
    parity = json.loads((workdir / "models/demo/parity.json").read_text())
    assert parity["pass"] and parity["worst_max_rel"] < 1e-4


def test_demo_dag_writes_per_image_outputs(demo_run):
    workdir, _ = demo_run
    annotations = json.loads((workdir / "data/demo/annotations.json").read_text())
    txt = sorted((workdir / "preds/demo/onnx/txt").glob("*.txt"))
    assert len(txt) == len(annotations["images"])
    assert len(list((workdir / "preds/demo/onnx/drawn").glob("*.jpg"))) == 8
    detections = json.loads((workdir / "preds/demo/onnx/detections.json").read_text())
    lines = sum(len(p.read_text().splitlines()) for p in txt)
    assert lines == len(detections)
    assert (workdir / "logs/infer/demo-onnx.log").read_text().strip()
    assert (workdir / "benchmarks/infer/demo-onnx.tsv").exists()


def test_rerun_does_nothing(demo_run):
    """Snakemake's plan is empty, and a real rerun executes no job and touches no output."""
    workdir, _ = demo_run
    assert planned_jobs(workdir, *TARGETS) == {}
    outputs = [p for p in workdir.rglob("*") if p.is_file() and ".snakemake" not in p.parts]
    before = {p: p.stat().st_mtime_ns for p in outputs}
    proc = snakemake(workdir, "--", *TARGETS)
    out = proc.stdout + proc.stderr
    assert "Nothing to be done" in out
    assert "Job stats:" not in out and "Finished job" not in out and "\nrule " not in out
    assert {p: p.stat().st_mtime_ns for p in outputs} == before


def test_scoring_setting_plans_only_scoring(demo_run, tmp_path):
    workdir, _ = demo_run
    change = write_config(tmp_path / "c.yaml", {"score": {"max_detections": 50}})
    assert planned_jobs(workdir, *TARGETS, configfiles=[change]) == {"score_detections": 2}


def test_resize_kernel_plans_inference_and_scoring_not_export(demo_run, tmp_path):
    workdir, _ = demo_run
    change = write_config(tmp_path / "c.yaml", {"preprocess": {"resize_kernel": "cv2"}})
    assert planned_jobs(workdir, *TARGETS, configfiles=[change]) == {
        "infer": 2,
        "score_detections": 2,
    }


def test_torch_setting_plans_only_the_pytorch_variants(demo_run, tmp_path):
    """The torch section reaches the PyTorch variants' jobs only (onnx keeps its detections)."""
    workdir, _ = demo_run
    change = write_config(tmp_path / "c.yaml", {"pytorch": {"apply_on_cpu": True}})
    assert planned_jobs(workdir, *TARGETS, configfiles=[change]) == {
        "infer": 1,
        "score_detections": 1,
    }


def test_model_setting_plans_export_and_after(demo_run, tmp_path):
    workdir, _ = demo_run
    change = write_config(tmp_path / "c.yaml", {"export": {"opset": 18}})
    jobs = planned_jobs(workdir, *TARGETS, configfiles=[change])
    assert jobs == {"export_head": 1, "simplify_head": 1, "infer": 1, "score_detections": 1}


@pytest.fixture(scope="module")
def sharded_run(demo_run, tmp_path_factory):
    """demo_run's directory copied (its .snakemake records too), then results/map_onnx.json
    with infer.shards: 2: only inference and scoring rerun, as two shards and a gather."""
    workdir, _ = demo_run
    copy = tmp_path_factory.mktemp("sharded") / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    shards = write_config(copy.parent / "shards.yaml", {"infer": {"shards": 2}})
    planned = planned_jobs(copy, "results/map_onnx.json", configfiles=[shards])
    started = time.monotonic()
    snakemake(copy, "--", "results/map_onnx.json", configfiles=[shards])
    print(f"\ninfer.shards 2 over demo_run: {time.monotonic() - started:.1f}s")
    return copy, planned


def test_two_shards_write_the_unsharded_files_and_map(demo_run, sharded_run):
    workdir, _ = demo_run
    sharded, planned = sharded_run
    assert planned == {"infer_shard": 2, "infer_gather": 1, "score_detections": 1}
    preds = "preds/demo/onnx"
    for name in ("1-of-2", "2-of-2"):
        assert (sharded / preds / "shards" / name / "detections.npz").is_file()
        assert (sharded / f"logs/infer/demo-onnx-{name}.log").read_text().strip()
        assert (sharded / f"benchmarks/infer/demo-onnx-{name}.tsv").is_file()
    assert (sharded / "benchmarks/infer/demo-onnx-gather.tsv").is_file()

    whole = workdir / preds / "detections.json"
    assert whole.read_bytes() == (sharded / preds / "detections.json").read_bytes()
    for folder in ("txt", "drawn"):
        names = sorted(p.name for p in (workdir / preds / folder).iterdir())
        assert names == sorted(p.name for p in (sharded / preds / folder).iterdir())
        _, mismatch, errors = filecmp.cmpfiles(
            workdir / preds / folder, sharded / preds / folder, names, shallow=False
        )
        assert (mismatch, errors) == ([], []), folder
    assert json.loads((sharded / "results/map_onnx.json").read_text()) == json.loads(
        (workdir / "results/map_onnx.json").read_text()
    )
    stats = json.loads((sharded / preds / "stats.json").read_text())
    assert stats["images"] == 200  # 25 batches of 8: shards of 12 and 13
    assert [s["images"] for s in stats["shards"]] == [96, 104]


def test_back_to_one_shard_plans_the_single_infer_job(sharded_run, tmp_path):
    sharded, _ = sharded_run
    assert planned_jobs(sharded, "results/map_onnx.json") == {"infer": 1, "score_detections": 1}
