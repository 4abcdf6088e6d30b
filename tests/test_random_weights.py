"""scripts/random_weights.py: the checkpoint the GPU record times with (benchmarks/gpu-h200.md)."""

import runpy

import pytest
import torch

from retinaflow.model.loading import load_model

from .workflow import ROOT


def test_random_weights_load_strictly_with_the_class_bias(tmp_path):
    out = tmp_path / "rand.pt"
    script = runpy.run_path(str(ROOT / "scripts" / "random_weights.py"))
    script["main"]([str(out), "--arch", "demo", "--num-classes", "6", "--image-size", "320"])
    model = load_model(out, "demo", 6, 320)  # strict: every key of the architecture
    bias = model.head.classification_head.cls_logits.bias
    assert torch.equal(bias, torch.full_like(bias, -1.0))


def test_class_spread_spreads_the_logits_about_the_bias(tmp_path):
    """--class-spread S: the probe's class logits get standard deviation S about the bias
    (the weight is scaled by exactly S / the old deviation, and the logits' deviation is
    linear in the weight's scale, the bias aside: so S to float32 rounding, 1e-3 relative),
    the rest of the checkpoint is as without it, and the spread keeps distinct values in
    float16 where the plain random head's logits collapse onto a few."""
    script = runpy.run_path(str(ROOT / "scripts" / "random_weights.py"))
    args = ["--arch", "demo", "--num-classes", "6", "--image-size", "320"]
    script["main"]([str(tmp_path / "plain.pt"), *args])
    script["main"]([str(tmp_path / "spread.pt"), *args, "--class-spread", "1.5"])
    plain = load_model(tmp_path / "plain.pt", "demo", 6, 320)
    spread = load_model(tmp_path / "spread.pt", "demo", 6, 320)
    logits = script["probe_logits"](spread, 0)
    assert abs(float(logits.std()) - 1.5) < 1.5e-3
    # about the bias, the bulk above the 0.05 threshold (logit -2.94): N(-1, 1.5) puts 90% of
    # the logits there; 75% leaves room for the weights' own mean, shifted by the same scale
    assert float((logits > -2.944).float().mean()) > 0.75
    old, new = plain.state_dict(), spread.state_dict()
    changed = [k for k in old if not torch.equal(old[k], new[k])]
    assert changed == ["head.classification_head.cls_logits.weight"]
    plain_values = script["probe_logits"](plain, 0).half().unique().numel()
    assert logits.half().unique().numel() > 10 * plain_values


def test_class_spread_must_be_positive(tmp_path, capsys):
    script = runpy.run_path(str(ROOT / "scripts" / "random_weights.py"))
    with pytest.raises(SystemExit):
        script["main"]([str(tmp_path / "x.pt"), "--arch", "demo", "--class-spread", "0"])
    assert "--class-spread must be positive, got 0.0" in capsys.readouterr().err
