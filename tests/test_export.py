"""Export of the demo head: stable names, dynamic batch, parity gate."""

import json

import numpy as np
import onnx
import pytest
import torch

from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.errors import ParityError
from retinaflow.export import export_head_onnx, parity_on_dataset, simplify_onnx
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import INPUT_NAME, OUTPUT_NAMES, HeadMaps
from retinaflow.runtime import runner_settings
from retinaflow.runtime.onnxruntime_runner import OnnxRuntimeRunner

from .configs import OPSET

MODEL = {"arch": "demo", "num_classes": 6, "image_size": 128}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    torch.save(build_retinanet(**MODEL).state_dict(), root / "weights.pt")
    from retinaflow.model.loading import load_head

    head = load_head(root / "weights.pt", **MODEL)
    export_head_onnx(head, root / "head.onnx", 128, OPSET)
    simplify_onnx(root / "head.onnx", root / "head.sim.onnx")
    make_demo_dataset(root / "data", "val", 4)
    return root, head


def test_names_and_dynamic_batch(exported):
    root, head = exported
    model = onnx.load(str(root / "head.sim.onnx"))
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    runner = OnnxRuntimeRunner(root / "head.sim.onnx")
    # the records name the execution provider that ran (ONNX Runtime falls back silently)
    assert runner_settings(runner)["provider"] == "CPUExecutionProvider"
    images = np.random.default_rng(1).random((3, 3, 128, 128), dtype=np.float32)
    maps = runner(images)
    with torch.inference_mode():
        reference = head(torch.from_numpy(images))
    for out, ref in zip(maps, reference, strict=True):
        assert out.shape == tuple(ref.shape) and out.shape[0] == 3
        assert np.allclose(out, ref.numpy(), atol=1e-4)


def test_parity_record_and_gate(exported):
    root, _ = exported
    args = (root / "weights.pt", MODEL, root / "head.sim.onnx", root / "data/annotations.json")
    record = parity_on_dataset(
        *args, root / "data/images", root / "parity.json", num_images=2, max_rel=1e-4, threads=1
    )
    assert record["pass"] and record["images"] == 2
    assert json.loads((root / "parity.json").read_text())["worst_max_rel"] < 1e-4
    with pytest.raises(ParityError, match="> setting max_rel = "):
        parity_on_dataset(
            *args,
            root / "data/images",
            root / "strict.json",
            num_images=4,
            max_rel=1e-12,
            threads=1,
        )
    assert json.loads((root / "strict.json").read_text())["pass"] is False


def test_head_maps_match_torchvision_head(exported):
    """The truncated forward gives the same numbers as torchvision's RetinaNetHead: all 10
    maps, the 5 class maps against cls_logits and the 5 box maps against bbox_regression."""
    _, head = exported
    model = build_retinanet(**MODEL).eval()
    model.load_state_dict({**model.state_dict(), **_model_state(head)})
    images = torch.rand(1, 3, 128, 128)
    with torch.inference_mode():
        ours = HeadMaps(model)(images)
        normalized = (images - head.mean) / head.std
        features = list(model.backbone(normalized).values())
        ref = model.head(features)
    from retinaflow.postprocess import flatten_map

    assert len(ours) == 10
    for maps, key, channels in ((ours[:5], "cls_logits", 6), (ours[5:], "bbox_regression", 4)):
        want = ref[key]
        assert all(m.shape[1] == 9 * channels for m in maps), key  # 9 anchors per location
        flat = torch.cat([flatten_map(m, channels) for m in maps], 1)
        assert flat.shape == want.shape, key
        # the same float32 convolutions on the same features: equal up to the kernels'
        # summation order, ~1e-6 of the values' scale; 1e-5 of the scale allows 10x that
        scale = want.abs().max().item()
        assert scale > 0 and (flat - want).abs().max().item() <= 1e-5 * scale, key


def _model_state(head):
    state = {f"backbone.{k}": v for k, v in head.backbone.state_dict().items()}
    state.update(
        {
            f"head.classification_head.{k}": v
            for k, v in head.classification_head.state_dict().items()
        }
    )
    state.update(
        {f"head.regression_head.{k}": v for k, v in head.regression_head.state_dict().items()}
    )
    return state
