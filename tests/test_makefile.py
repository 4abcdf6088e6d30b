"""The Makefile's `clean`: the workflow's outputs go, the committed records stay."""

import shutil
import subprocess

from .workflow import ROOT


def test_clean_removes_outputs_and_keeps_the_benchmark_records(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    kept = ["benchmarks/gpu-h200.md", "benchmarks/records/gpu-h200/perf.json", "README.md"]
    gone = [
        "benchmarks/compile/demo-int8.tsv",  # a rule's benchmark: directive
        "benchmarks/data/demo.tsv",
        "results/map_int8.json",
        "logs/infer/int8.log",
        "data/demo/annotations.json",
        ".snakemake/log/run.log",
    ]
    for name in kept + gone:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    subprocess.run(["make", "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert [n for n in kept if not (tmp_path / n).exists()] == []
    assert [n for n in gone if (tmp_path / n).exists()] == []
    assert not (tmp_path / "benchmarks" / "compile").exists()
