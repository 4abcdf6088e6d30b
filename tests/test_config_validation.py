"""A wrong config key or value fails before any job runs, naming the key."""

import pytest

from .workflow import snakemake, write_config


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"infer": {"batch_sise": 4}}, "batch_sise"),
        ({"preprocess": {"resize_kernel": "lanczos"}}, "resize_kernel"),
        ({"score": {"max_detections": -3}}, "max_detections"),
        ({"model": {"arch": "resnet18"}}, "resnet18"),
        ({"calibraton": {"count": 10}}, "calibraton"),
        ({"quantize": {"histogram_bins": 128}}, "histogram_bins"),
        ({"infer": {"device": "gpu"}}, "device"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, overrides, expected):
    bad = write_config(tmp_path / "bad.yaml", overrides)
    proc = snakemake(tmp_path, "--", "results/map_onnx.json", configfiles=[bad], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error validating config" in out
    assert expected in out
    assert not (tmp_path / "data").exists()  # nothing ran


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (
            {"model": {"weights": {"source": "local", "path": "missing/weights.pt"}}},
            "model.weights.path: missing/weights.pt does not exist",
        ),
        (
            {"dataset": {"name": "oi", "source": "local", "local_root": "no/such/folder"}},
            "dataset.local_root: no/such/folder is not a folder",
        ),
        (
            {"dataset": {"name": "oi", "source": "direct", "urls": {"boxes": "hand/boxes.csv"}}},
            "dataset.urls.boxes: hand/boxes.csv is neither an http(s) URL nor an existing",
        ),
    ],
)
def test_missing_file_fails_before_any_job_naming_the_key(tmp_path, overrides, expected):
    """Files a config names are checked when the workflow is parsed: one line per problem, the
    key first, as the last thing printed, and no job runs."""
    bad = write_config(tmp_path / "bad.yaml", overrides)
    proc = snakemake(tmp_path, "--", "results/map_onnx.json", configfiles=[bad], check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode != 0
    problems = lines[lines.index("retinaflow: invalid config:") + 1 :]  # the last lines
    assert any(line.strip().startswith(expected) for line in problems), lines[-5:]
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()
