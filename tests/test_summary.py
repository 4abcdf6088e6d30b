"""The comparison table and MLPerf's gate: pass only with mAP >= 99% of the fp32 mAP."""

import csv

import pytest

from retinaflow.io import write_json
from retinaflow.summary import STAT_KEYS, summarize, write_summary

KEYS = (*STAT_KEYS, "ARs", "ARm", "ARl")


def _map_file(tmp_path, variant, ap):
    stats = {k: round(ap * 1.1, 4) for k in KEYS}
    stats["AP"] = ap
    path = tmp_path / f"map_{variant}.json"
    write_json(path, {"stats": stats, "bbox_mAP": ap})
    return path


def _rows(tmp_path, aps, meta_files=None):
    files = {v: _map_file(tmp_path, v, ap) for v, ap in aps.items()}
    return {r["variant"]: r for r in summarize(files, meta_files)}


def test_gate_at_99_percent_of_fp32(tmp_path):
    rows = _rows(tmp_path, {"int8-kl": 0.3972, "fp32": 0.40, "int8-max": 0.3950, "fp16": 0.3960})
    assert rows["fp32"]["gate"] == "pass" and rows["fp32"]["delta_AP"] == 0.0
    assert rows["int8-kl"]["gate"] == "pass"
    assert rows["fp16"]["gate"] == "pass"  # exactly 99%: the gate is >=
    assert rows["int8-max"]["gate"] == "fail"
    assert rows["int8-max"]["delta_AP"] == pytest.approx(-0.005)
    assert rows["int8-max"]["ratio_AP"] == pytest.approx(0.9875)
    assert {r["reference"] for r in rows.values()} == {"fp32"}


def test_reference_first_then_given_order(tmp_path):
    files = {v: _map_file(tmp_path, v, 0.3) for v in ("int8", "fp16", "fp32", "onnx")}
    assert [r["variant"] for r in summarize(files)] == ["fp32", "int8", "fp16", "onnx"]


def test_onnx_is_the_reference_without_fp32(tmp_path):
    rows = _rows(tmp_path, {"onnx": 0.50, "int8": 0.496})
    assert rows["int8"]["reference"] == "onnx"
    assert rows["int8"]["gate"] == "pass"


def test_no_reference_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="map_fp32.json"):
        _rows(tmp_path, {"int8": 0.3})


def test_missing_stat_is_named(tmp_path):
    path = tmp_path / "map_fp32.json"
    write_json(path, {"stats": {"AP": 0.4}})
    with pytest.raises(ValueError, match="AP50"):
        summarize({"fp32": path})


def test_files_say_reference_gate_and_simulated_int8(tmp_path):
    meta = tmp_path / "meta.json"
    write_json(meta, {"precision": "int8", "int8_execution": "simulated: convs in float32"})
    files = {v: _map_file(tmp_path, v, ap) for v, ap in {"fp32": 0.4, "int8": 0.38}.items()}
    write_summary(files, tmp_path / "summary.md", tmp_path / "summary.csv", {"int8": meta})
    md = (tmp_path / "summary.md").read_text()
    assert "Reference: `fp32` (mAP 0.4000)" in md and ">= 0.3960" in md
    assert "| int8 * |" in md and "**fail**" in md and "simulated: convs in float32" in md
    with open(tmp_path / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["variant"] for r in table] == ["fp32", "int8"]
    assert table[1]["gate"] == "fail" and table[1]["int8_execution"].startswith("simulated")
    assert float(table[1]["delta_AP"]) == pytest.approx(-0.02)
    assert list(table[0])[:10] == ["variant", *STAT_KEYS]


def test_int8_rows_name_their_calibration_set(tmp_path):
    records = {}
    for variant, calibration in {
        "int8": {"source": "demo", "images": 100, "split": "calibration", "seed": 3000},
        "int8-kl": {"source": "mlperf", "images": 500, "split": "train"},
    }.items():
        records[variant] = tmp_path / f"head.{variant}.json"
        write_json(records[variant], {"method": "max", "calibration": calibration})
    aps = {"fp32": 0.4, "onnx": 0.4, "fp16": 0.399, "int8": 0.398, "int8-kl": 0.397}
    files = {v: _map_file(tmp_path, v, ap) for v, ap in aps.items()}
    write_summary(files, tmp_path / "summary.md", tmp_path / "summary.csv", None, records)
    with open(tmp_path / "summary.csv") as f:
        table = {r["variant"]: r["calibration"] for r in csv.DictReader(f)}
    assert table == {
        "fp32": "",
        "onnx": "",
        "fp16": "",
        "int8": "demo (100 images, seed 3000)",
        "int8-kl": "mlperf (500 images, train split)",
    }
    md = (tmp_path / "summary.md").read_text()
    assert "| gate | calibration |" in md
    assert "| pass | demo (100 images, seed 3000) |" in md
    assert "| pass | mlperf (500 images, train split) |" in md
    assert "| fp16 |" in md and md.split("| fp16 |")[1].splitlines()[0].endswith("| pass |  |  |")


def test_int8_record_without_its_calibration_set_is_an_error(tmp_path):
    record = tmp_path / "head.int8-max.json"
    write_json(record, {"method": "max"})
    files = {v: _map_file(tmp_path, v, 0.4) for v in ("fp32", "int8")}
    with pytest.raises(ValueError, match="head.int8-max.json"):
        summarize(files, None, {"int8": record})
