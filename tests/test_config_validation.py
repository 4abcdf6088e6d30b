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
