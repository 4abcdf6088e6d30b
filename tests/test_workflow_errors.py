"""User errors through the DAG, as a user meets them: the clear line is the last thing the
console shows that names the problem (below Snakemake's error blocks), nothing half-written is
left, and settings that change a record rerun it."""

import shutil
import socket

import pytest

from .workflow import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow
TARGETS = ("results/map_onnx.json", "results/map_torch.json")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error_lines(proc) -> list[str]:
    """The console's lines after Snakemake's last error block (its own closing lines aside)."""
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    last_block = max(i for i, line in enumerate(lines) if line.startswith("Exiting "))
    tail = lines[last_block:]
    return [line for line in tail if line.startswith("retinaflow error:")]


def test_offline_download_error_is_the_last_message(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/boxes.csv"
    config = write_config(
        tmp_path / "offline.yaml",
        {"dataset": {"max_images": 2, "urls": {"boxes": url}, "download": {"retries": 0}}},
    )
    proc = snakemake(
        tmp_path, "--", "data/openimages/annotations.json", configfiles=[config], check=False,
        demo=False,
    )  # fmt: skip
    assert proc.returncode != 0
    errors = _error_lines(proc)
    assert len(errors) == 1, (proc.stdout + proc.stderr)[-3000:]
    assert url in errors[0] and "dataset.urls.boxes" in errors[0]
    assert not (tmp_path / "data/openimages/annotations.json").exists()


def test_cuda_without_a_gpu_fails_before_any_image(demo_run, tmp_path):
    """CI has no GPU: `infer.device: cuda` must stop the onnx and torch jobs with the device
    error, not run on the CPU and record "cuda". (On a machine with a GPU the same run must
    succeed and record it.)"""
    import torch

    workdir, _ = demo_run
    copy = tmp_path / "run"
    # the metadata stays: it holds the params the device change is compared with
    shutil.copytree(workdir, copy, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    config = write_config(tmp_path / "cuda.yaml", {"infer": {"device": "cuda"}})
    proc = snakemake(copy, "--keep-going", "--", *TARGETS, configfiles=[config], check=False)
    if torch.cuda.is_available():
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        assert '"device": "cuda"' in (copy / "preds/demo/torch/stats.json").read_text()
        return
    assert proc.returncode != 0
    errors = _error_lines(proc)
    assert len(errors) == 2, (proc.stdout + proc.stderr)[-3000:]
    assert all("cuda" in line and "no CUDA GPU" in line or "onnxruntime" in line for line in errors)
    for variant in ("onnx", "torch"):
        assert not (copy / f"preds/demo/{variant}/stats.json").exists()
        assert not (copy / f"preds/demo/{variant}/detections.json").exists()


def test_threads_rerun_the_records_that_hold_them(demo_run, tmp_path):
    """stats.json records the threads and the speed they gave, so a change of infer.threads
    reruns inference (and the scoring after it); perf.threads reruns the LoadGen records."""
    workdir, _ = demo_run
    change = write_config(tmp_path / "c.yaml", {"infer": {"threads": 1}})
    assert planned_jobs(workdir, *TARGETS, configfiles=[change]) == {
        "infer": 2,
        "score_detections": 2,
    }
