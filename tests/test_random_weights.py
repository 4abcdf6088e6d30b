"""scripts/random_weights.py: the checkpoint the GPU record times with (benchmarks/gpu-h200.md)."""

import runpy

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
