"""The MLPerf architecture loads both published checkpoint forms and exports through the same
path as the demo; a checkpoint of another architecture is refused with a clear message."""

import numpy as np
import pytest
import torch

from retinaflow.errors import CheckpointError
from retinaflow.export import check_parity, export_head_onnx, simplify_onnx
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import OUTPUT_NAMES
from retinaflow.model.loading import load_model, store_weights

from .configs import OPSET

MLPERF = {"arch": "resnext50_32x4d_fpn", "num_classes": 264, "image_size": 128}


@pytest.fixture(scope="module")
def mlperf_model():
    torch.manual_seed(0)
    model = build_retinanet(**MLPERF).eval()
    with torch.no_grad():  # the prior bias keeps random outputs near zero: give it variety
        model.head.classification_head.cls_logits.bias.normal_(0, 1)
    return model


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_mlperf_architecture_shape(mlperf_model):
    assert sum(p.numel() for p in mlperf_model.parameters()) == pytest.approx(37.0e6, rel=0.02)
    from retinaflow.model.head import HeadMaps

    maps = HeadMaps(mlperf_model)(torch.zeros(1, 3, 800, 800))
    assert [tuple(m.shape[1:]) for m in maps[:5]] == [
        (2376, 100, 100), (2376, 50, 50), (2376, 25, 25), (2376, 13, 13), (2376, 7, 7),
    ]  # fmt: skip
    assert all(m.shape[1] == 36 for m in maps[5:])
    anchors = sum(m.shape[2] * m.shape[3] * 9 for m in maps[:5])
    assert anchors == 120087


def test_loads_training_checkpoint_dict(mlperf_model, tmp_path):
    path = tmp_path / "retinanet_model_10.pth"
    state = {f"module.{k}": v for k, v in mlperf_model.state_dict().items()}
    torch.save({"model": state, "epoch": 10, "args": {"lr": 0.0001}}, path)
    _assert_same_weights(load_model(path, **MLPERF), mlperf_model)


def test_loads_torchscript_archive(mlperf_model, tmp_path):
    path = tmp_path / "resnext50_32x4d_fpn.pth"
    torch.jit.script(mlperf_model).save(str(path))
    _assert_same_weights(load_model(path, **MLPERF), mlperf_model)


def test_store_weights_normalises_the_form(mlperf_model, tmp_path):
    src = tmp_path / "scripted.pth"
    torch.jit.script(mlperf_model).save(str(src))
    store_weights(src, tmp_path / "weights.pt", **MLPERF)
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert state.keys() == mlperf_model.state_dict().keys()


def test_exports_through_the_same_path(mlperf_model, tmp_path):
    from retinaflow.model.head import HeadMaps

    head = HeadMaps(mlperf_model).eval()
    export_head_onnx(head, tmp_path / "head.onnx", 128, OPSET)
    simplify_onnx(tmp_path / "head.onnx", tmp_path / "head.sim.onnx")
    images = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    record = check_parity(head, tmp_path / "head.sim.onnx", images, max_rel=1e-4, threads=1)
    assert record["pass"], record["worst_max_rel"]
    assert list(record["maps"]) == list(OUTPUT_NAMES)


def test_wrong_architecture_is_refused(tmp_path):
    path = tmp_path / "demo.pt"
    torch.save(build_retinanet("demo", 6, 128).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"demo\.pt does not fit.*resnext50_32x4d_fpn"):
        load_model(path, **MLPERF)


def test_wrong_class_count_is_refused(tmp_path):
    path = tmp_path / "demo.pt"
    torch.save(build_retinanet("demo", 6, 128).state_dict(), path)
    with pytest.raises(CheckpointError, match="num_classes"):
        load_model(path, "demo", 7, 128)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="nothere.pt does not exist"):
        load_model(tmp_path / "nothere.pt", **MLPERF)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt is not a PyTorch checkpoint"):
        load_model(garbage, **MLPERF)


def test_old_torchvision_key_names_are_upgraded(mlperf_model, tmp_path):
    """MLPerf's checkpoints predate torchvision's Conv2dNormActivation key names."""
    import re

    old = {}
    for key, value in mlperf_model.state_dict().items():
        key = re.sub(r"(fpn\.(inner|layer)_blocks\.\d)\.0\.", r"\1.", key)
        key = re.sub(r"(head\.\w+_head\.conv\.)(\d)\.0\.", lambda m: f"{m[1]}{int(m[2]) * 2}.", key)
        old[key] = value
    assert "backbone.fpn.inner_blocks.0.weight" in old
    assert "head.classification_head.conv.2.weight" in old
    torch.save({"model": old}, tmp_path / "old.pth")
    _assert_same_weights(load_model(tmp_path / "old.pth", **MLPERF), mlperf_model)
