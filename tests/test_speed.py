"""results/speed.json: a tiny demo head timed in ONNX Runtime fp32 and int8 (QDQ), PyTorch and
an untuned TVM build, interleaved in one process; the record and the summary's speed column."""

import csv
import json
import statistics

import pytest
import torch

from retinaflow.compile import compile_head, default_target
from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.export import export_head_onnx
from retinaflow.io import write_json
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import OUTPUT_NAMES, HeadMaps
from retinaflow.quantize import quantize_head
from retinaflow.speed import (
    CPU_FLAGS,
    measure_speed,
    open_speed_runner,
    tuning_label,
    tuning_state,
)
from retinaflow.summary import write_summary
from retinaflow.tuning import tune_head

from .configs import FP16_ACCUMULATE, OPSET, RESIZE_KERNEL, quantize_settings, tuning_settings

SIZE = 64
MODEL = {"arch": "demo", "num_classes": 6, "image_size": SIZE}
ORDER = ("onnx", "onnx-int8", "torch", "fp32")


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """The four variants' artifacts of one random demo head, and two demo images."""
    root = tmp_path_factory.mktemp("speed")
    torch.manual_seed(0)
    model = build_retinanet("demo", 6, SIZE)
    weights = root / "weights.pt"
    torch.save(model.state_dict(), weights)
    onnx_path = root / "head.onnx"
    export_head_onnx(HeadMaps(model), onnx_path, SIZE, OPSET)
    make_demo_dataset(root / "demo", "val", 2)
    images = sorted((root / "demo" / "images").glob("*.jpg"))
    qdq = root / "head.int8-max.onnx"
    quantize_head(onnx_path, qdq, images, SIZE, **quantize_settings(method="max"))
    tuning = root / "tuning-fp32"
    shape = [1, 3, SIZE, SIZE]
    tune_head(onnx_path, tuning, default_target(), trials=0, input_shape=shape, **tuning_settings())
    so, meta = root / "fp32" / "module.so", root / "fp32" / "meta.json"
    compile_head(
        onnx_path, so, meta, None, "fp32", shape, tuning_dir=tuning, fp16_accumulate=FP16_ACCUMULATE
    )
    artifacts = {"onnx": onnx_path, "onnx-int8": qdq, "torch": weights, "fp32": so}
    return {"root": root, "artifacts": artifacts, "images": images, "metas": {"fp32": meta}}


@pytest.fixture(scope="module")
def timed(heads):
    """The record, and the order in which the runners were really called."""
    calls = []

    def recording(variant, runner):
        def run(batch):
            calls.append(variant)
            maps = runner(batch)
            assert len(maps) == len(OUTPUT_NAMES)
            return maps

        return run

    runners = {
        v: recording(v, open_speed_runner(v, path, MODEL, threads=1, batch=1))
        for v, path in heads["artifacts"].items()
    }
    record = measure_speed(
        heads["artifacts"],
        heads["images"],
        MODEL,
        resize_kernel="pil",
        batch=1,
        threads=1,
        rounds=3,
        warmup=1,
        metas=heads["metas"],
        runners=runners,
    )
    return record, calls


def test_runs_interleaved_round_by_round(timed):
    record, calls = timed
    assert calls == list(ORDER) * (1 + 3)  # a warm-up round, then A B C D A B C D ...
    assert record["order"] == list(ORDER)


def test_record_per_variant(timed):
    record, _ = timed
    assert list(record["variants"]) == list(ORDER)
    runtimes = {v: e["runtime"] for v, e in record["variants"].items()}
    assert runtimes == {
        "onnx": "onnxruntime",
        "onnx-int8": "onnxruntime",
        "torch": "pytorch",
        "fp32": "tvm",
    }
    onnx = record["variants"]["onnx"]["median_s"]
    for variant, entry in record["variants"].items():
        assert entry["rounds"] == len(entry["times_s"]) == 3
        assert entry["median_s"] == statistics.median(entry["times_s"])
        assert entry["ratio_to_onnx"] == entry["median_s"] / onnx  # exactly, no rounding
        s = entry["spread"]
        assert 0 < s["min"] <= s["p25"] <= entry["median_s"] <= s["p75"] <= s["max"], variant
        assert (s["min"], s["max"]) == (min(entry["times_s"]), max(entry["times_s"]))
    assert record["variants"]["onnx"]["ratio_to_onnx"] == 1.0
    assert record["reference"] == "onnx"
    assert record["settings"]["rounds"] == 3 and record["settings"]["batch"] == 1
    machine = record["machine"]
    assert machine["cpu"] and set(machine["flags"]) == set(CPU_FLAGS)
    assert machine["threads"] == 1


def test_untuned_build_is_marked(timed):
    record, _ = timed
    tuning = record["variants"]["fp32"]["tuning"]
    assert tuning["tuned"] is False and tuning["trials"] == 0 and tuning["label"] == "untuned"
    assert tuning["tir_functions"] > 0
    assert all("tuning" not in record["variants"][v] for v in ("onnx", "onnx-int8", "torch"))


def test_tuned_label_names_trials_and_functions(tmp_path):
    meta = tmp_path / "meta.json"
    write_json(meta, {"tuning_trials": 64, "tuned_functions": 30, "tir_functions": 48})
    assert tuning_state(meta)["tuned"] is True
    assert tuning_state(meta)["label"] == "tuned (64 trials, 30/48 functions)"
    # trials spent but nothing applied (e.g. a database of other workloads): still untuned
    assert tuning_label(64, 0, 48) == "untuned"
    # schedules from a database the package ships (shipped_tuning) say so
    label = tuning_label(448, 26, 100, "demo-int8-320-avx2")
    assert label == "tuned (448 trials, shipped demo-int8-320-avx2, 26/100 functions)"


def test_build_without_meta_is_refused(heads):
    with pytest.raises(ValueError, match="no meta json"):
        measure_speed(
            {"fp32": heads["artifacts"]["fp32"]},
            heads["images"][:1],
            MODEL,
            resize_kernel=RESIZE_KERNEL,
            batch=1,
            threads=1,
            rounds=1,
            warmup=0,
        )


def test_summary_speed_column(timed, tmp_path):
    record, _ = timed
    speed = tmp_path / "speed.json"
    write_json(speed, record)
    maps = {}
    for variant, ap in (("onnx", 0.5), ("onnx-int8", 0.49), ("fp32", 0.5)):
        maps[variant] = tmp_path / f"map_{variant}.json"
        write_json(
            maps[variant],
            {
                "stats": dict.fromkeys(
                    ("AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"), 0.3
                )
                | {"AP": ap}
            },
        )
    md, table = tmp_path / "summary.md", tmp_path / "summary.csv"
    write_summary(maps, md, table, speed_file=speed)
    rows = {r["variant"]: r for r in csv.DictReader(open(table))}
    median = 1e3 * record["variants"]["fp32"]["median_s"]
    assert float(rows["fp32"]["speed_ms"]) == pytest.approx(median, abs=1e-6)
    assert rows["fp32"]["tuning"] == "untuned" and "**untuned**" in rows["fp32"]["speed"]
    assert float(rows["onnx"]["speed_ratio_to_onnx"]) == 1.0 and rows["onnx"]["tuning"] == ""
    text = md.read_text()
    assert "| speed |" in text and "median of 3 interleaved rounds" in text
    fp32_line = next(line for line in text.splitlines() if line.startswith("| fp32 "))
    assert fp32_line.endswith("**untuned** |")
    assert json.loads(speed.read_text())["variants"]["onnx-int8"]["runtime"] == "onnxruntime"
