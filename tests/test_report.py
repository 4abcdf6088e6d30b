"""The report's library (retinaflow.plots, retinaflow.fiftyone_results) on small made-up
records: COCOeval's precision arrays give back its mAP, every figure is a real picture, and
FiftyOne's COCO evaluation agrees with pycocotools'. The report on the demo DAG itself is
tests/test_workflow_report.py."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from retinaflow import plots
from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.evaluate import (
    evaluate_detections,
    read_precision_arrays,
    write_precision_arrays,
)
from retinaflow.summary import write_summary

from .configs import MAX_DETECTIONS
from .report_checks import MIN_COLOURED_SPEED, assert_real_plot


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    root = tmp_path_factory.mktemp("truth")
    path = make_demo_dataset(root, "val", 12)
    return path, json.loads(path.read_text())


def _noisy(data, seed, jitter, ties=False, drop=0.1, extra=0.3):
    """The ground truth as detections, moved by up to `jitter` of the box, some missed, some
    extra boxes of another class; scores that rank the better boxes higher (`ties`: rounded
    to 2 decimals, the extra boxes all 0.3, so that many scores are equal)."""
    rng = np.random.default_rng(seed)
    out = []
    for a in data["annotations"]:
        if rng.random() < drop:
            continue
        x, y, w, h = a["bbox"]
        dx, dy = rng.uniform(-jitter, jitter, 2)
        score = float(1 - abs(dx) - abs(dy) + rng.uniform(0, 0.05))
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "bbox": [x + dx * w, y + dy * h, w, h],
                "score": round(score, 2) if ties else score,
            }
        )
        if rng.random() < extra:
            wrong = (a["category_id"] + 1) % 6
            out.append(
                dict(out[-1], category_id=wrong, score=0.3 if ties else rng.uniform(0.2, 0.4))
            )
    return out


@pytest.fixture(scope="module")
def variants(truth):
    path, data = truth
    return {
        "fp32": _noisy(data, 0, 0.05),
        "int8": _noisy(data, 1, 0.15),
        "int8-kl": _noisy(data, 0, 0.05, ties=True),
    }


def test_precision_arrays_give_back_cocoevals_map(truth, variants, tmp_path):
    path, _ = truth
    result, arrays = evaluate_detections(path, variants["int8"], MAX_DETECTIONS)
    write_precision_arrays(tmp_path / "a.npz", arrays)
    arrays = read_precision_arrays(tmp_path / "a.npz")
    assert arrays["precision"].shape == (10, 101, 6, 4, 3)
    # COCOeval's stats[0]: the mean over IoU, recall and classes with ground truth
    per_class = plots.class_ap(arrays)
    assert np.mean(list(per_class.values())) == pytest.approx(result["stats"]["AP"], abs=1e-6)
    curve = plots.mean_precision(arrays, None)
    assert np.nanmean(curve) == pytest.approx(result["stats"]["AP"], abs=1e-6)
    assert np.nanmean(plots.mean_precision(arrays, 0.5)) == pytest.approx(
        result["stats"]["AP50"], abs=1e-6
    )
    # nothing detected: an empty file, read back as None
    write_precision_arrays(tmp_path / "none.npz", None)
    assert read_precision_arrays(tmp_path / "none.npz") is None


@pytest.fixture(scope="module")
def records(truth, variants, tmp_path_factory):
    """map json, npz, summary.csv, perf and speed records and benchmark files of two variants,
    as the workflow writes them."""
    path, _ = truth
    root = tmp_path_factory.mktemp("records")
    maps, arrays = {}, {}
    for variant, detections in variants.items():
        result, a = evaluate_detections(path, detections, MAX_DETECTIONS)
        maps[variant] = root / f"map_{variant}.json"
        maps[variant].write_text(json.dumps(result))
        arrays[variant] = root / f"map_{variant}.npz"
        write_precision_arrays(arrays[variant], a)
        (root / f"det_{variant}.json").write_text(json.dumps(detections))
    write_summary(maps, root / "summary.md", root / "summary.csv")
    perf = {}
    for i, variant in enumerate(variants):
        for scenario in ("SingleStream", "Offline"):
            latency = {k: (1 + i) * (10 + 3 * j) for j, k in enumerate(plots.LATENCY_POINTS)}
            perf[(variant, scenario)] = root / f"perf_{variant}_{scenario}.json"
            record = {"result": "VALID", "latency_ms": {**latency, "mean": 12.0 * (1 + i)}}
            perf[(variant, scenario)].write_text(json.dumps(record))
    speed = {
        "settings": {"rounds": 5, "batch": 1, "threads": 2},
        "machine": {"cpu": "test"},
        "variants": {
            v: {
                "median_s": 0.01 * (1 + i),
                "spread": {"min": 0.009, "p25": 0.0095, "p75": 0.011, "max": 0.02 * (1 + i)},
                "times_s": list(0.01 * (1 + i) + 0.001 * np.arange(5)),
                "ratio_to_onnx": 1.0 + i,
                "runtime": "test",
                "tuning": {"label": "untuned" if i else ""},
            }
            for i, v in enumerate(variants)
        },
    }
    (root / "speed.json").write_text(json.dumps(speed))
    for stage, jobs in {"infer": ["demo-fp32", "demo-int8"], "score": ["fp32", "int8"]}.items():
        (root / "benchmarks" / stage).mkdir(parents=True)
        for n, job in enumerate(jobs):
            with open(root / "benchmarks" / stage / f"{job}.tsv", "w", newline="") as f:
                w = csv.writer(f, delimiter="\t")
                w.writerow(["s", "h:m:s", "max_rss", "max_vms"])
                w.writerow([2.5 * (n + 1), "0:00:02", 300 + 50 * n, 900])
    return {"root": root, "annotations": path, "maps": maps, "arrays": arrays, "perf": perf}


def test_accuracy_figures(records, tmp_path):
    out = {k: tmp_path / f"{k}.png" for k in ("map", "pr", "class_ap")}
    out["table"] = tmp_path / "summary.html"
    worst = plots.accuracy_figures(
        records["root"] / "summary.csv", records["arrays"], records["annotations"], 4, out
    )
    for key in ("map", "pr", "class_ap"):
        assert_real_plot(out[key])
    assert len(worst) == 4  # the 4 classes int8 hurts most, worst first
    assert [d for _, d in worst] == sorted((d for _, d in worst), reverse=True)
    table = out["table"].read_text()
    assert "<table>" in table and "int8" in table and "fp32" in table


def test_speed_figures_and_stage_times(records, tmp_path):
    out = {"latency": tmp_path / "l.png", "speed": tmp_path / "s.png", "table": tmp_path / "s.html"}
    plots.speed_figures(records["perf"], records["root"] / "speed.json", out)
    assert_real_plot(out["latency"])
    assert_real_plot(out["speed"], min_coloured=MIN_COLOURED_SPEED)
    assert "untuned" in out["table"].read_text()
    jobs = plots.stage_times(records["root"] / "benchmarks", tmp_path / "stages.png")
    assert [j["job"] for j in jobs] == [
        "infer/demo-fp32",
        "infer/demo-int8",
        "score/fp32",
        "score/int8",
    ]
    assert jobs[1]["s"] == 5.0 and jobs[1]["max_rss_mb"] == 350.0
    assert_real_plot(tmp_path / "stages.png")


def test_stage_times_without_benchmarks_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no Snakemake benchmark files"):
        plots.stage_times(tmp_path, tmp_path / "stages.png")


def test_detection_grid(records, truth, tmp_path):
    path, data = truth
    detections = {v: records["root"] / f"det_{v}.json" for v in ("fp32", "int8")}
    ids = plots.detection_grid(
        path, path.parent / "images", detections, 3, 0, 0.3, tmp_path / "g.png"
    )
    assert len(ids) == 3 and ids == sorted(ids)
    assert ids == plots.sample_image_ids([im["id"] for im in data["images"]], 3, 0)  # seeded
    assert_real_plot(tmp_path / "g.png", min_size=(700, 700))


@pytest.fixture
def fiftyone_home(tmp_path, monkeypatch):
    """fiftyone's database (its own mongod) under a temporary folder, no usage tracking."""
    for key, value in {
        "FIFTYONE_DATABASE_DIR": tmp_path / "db",
        "FIFTYONE_DEFAULT_DATASET_DIR": tmp_path / "datasets",
        "FIFTYONE_DO_NOT_TRACK": "true",
        "FIFTYONE_DATABASE_VALIDATION": "false",
    }.items():
        monkeypatch.setenv(key, str(value))
    return tmp_path


@pytest.mark.slow
def test_fiftyone_map_agrees_with_pycocotools(records, truth, fiftyone_home):
    """FiftyOne's COCO evaluation of each variant against pycocotools' COCOeval: both
    implement COCOeval, so with distinct scores they agree to rounding (measured: 1e-16).
    Equal scores are where they differ (fiftyone_results' docstring): FiftyOne ranks the true
    positives of a score before its false positives, pycocotools in image order, so FiftyOne's
    AP is the same or higher (measured here: +2.5e-3 with scores rounded to 2 decimals)."""
    from retinaflow.fiftyone_results import load_and_evaluate

    path, data = truth
    detections = {v: records["root"] / f"det_{v}.json" for v in ("fp32", "int8", "int8-kl")}
    record = load_and_evaluate(
        "retinaflow-test", path, path.parent / "images", detections, records["maps"],
        MAX_DETECTIONS, fiftyone_home / "fo.json", fiftyone_home / "fo.html", progress=False,
    )  # fmt: skip
    assert record["samples"] == len(data["images"])
    # the database fiftyone really used: the environment's, unless an earlier test in this
    # process imported fiftyone (it reads its config once; the workflow's jobs are processes)
    import fiftyone as fo

    assert record["database_dir"] == fo.config.database_dir
    for variant, m in record["variants"].items():
        assert 0.3 < m["pycocotools_mAP"] < 1, variant
        if variant == "int8-kl":  # ties: FiftyOne ranks a score's true positives first
            assert 0 < m["difference"] < 5e-3, m
        else:
            assert m["mAP"] == pytest.approx(m["pycocotools_mAP"], abs=1e-9), variant
    import fiftyone as fo

    dataset = fo.load_dataset("retinaflow-test")  # persistent: the App opens it by name
    assert dataset.persistent
    assert set(dataset.list_evaluations()) == {"eval_fp32", "eval_int8", "eval_int8_kl"}
    assert "FiftyOne mAP" in (fiftyone_home / "fo.html").read_text()
