"""int8 calibration with ONNX Runtime: a QDQ model that keeps the head maps' names, departs
from fp32 a little (not at all would mean nothing was quantized), and per method."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from retinaflow.data.demo import make_demo_dataset
from retinaflow.export import export_head_onnx
from retinaflow.fidelity import fidelity_of_build
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import OUTPUT_NAMES, HeadMaps
from retinaflow.quantize import count_qdq_nodes, quantize_head

SIZE = 64


def export_demo_head(path: Path, size: int, spread_weights: bool = True) -> Path:
    """A demo-architecture head with random weights. torchvision's init leaves the class maps
    of an untrained head nearly constant (tiny weights, prior bias); Kaiming weights give maps
    that vary, as a trained model's do."""
    torch.manual_seed(0)
    model = build_retinanet("demo", 6, size)
    if spread_weights:
        for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
            torch.nn.init.kaiming_normal_(conv.weight)
    export_head_onnx(HeadMaps(model), path, size)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("quant")
    make_demo_dataset(root / "demo", "val", 6)
    images = sorted((root / "demo" / "images").glob("*.jpg"))
    return export_demo_head(root / "head.onnx", SIZE), images, root


@pytest.fixture(scope="module")
def max_model(inputs):
    onnx_path, images, root = inputs
    out = root / "head.int8-max.onnx"
    record = quantize_head(onnx_path, out, images, SIZE, "pil", "max", per_channel=True)
    return out, record


def test_qdq_model_keeps_names_and_quantizes_convs(max_model):
    path, record = max_model
    model = onnx.load(str(path))
    assert [o.name for o in model.graph.output] == list(OUTPUT_NAMES)
    qdq = count_qdq_nodes(path)
    assert qdq["QuantizeLinear"] > 20 and qdq["DequantizeLinear"] > qdq["QuantizeLinear"]
    assert record["ort_calibration"] == "MinMax" and record["images"] == 6


def test_weights_are_int8_per_output_channel(max_model):
    model = onnx.load(str(max_model[0]))
    inits = {i.name: i for i in model.graph.initializer}
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    dequant = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    weight_dq = [n for n in dequant if n.output[0] in conv_weights and n.input[0] in inits]
    assert weight_dq, "no conv weight is stored quantized"
    for node in weight_dq:
        weight = numpy_helper.to_array(inits[node.input[0]])
        scale = numpy_helper.to_array(inits[node.input[1]])
        assert weight.dtype == np.int8
        assert scale.shape == (weight.shape[0],)  # one scale per output channel


def test_int8_departs_from_fp32_but_stays_close(inputs, max_model):
    onnx_path, images, _ = inputs
    report = fidelity_of_build(max_model[0], onnx_path, images, SIZE)
    assert report["images"] == 6 and set(report["maps"]) == set(OUTPUT_NAMES)
    assert report["cosine_min"] > 0.98
    assert report["max_rel"] > 1e-4  # identical maps would mean nothing was quantized


def test_kl_clips_and_ignores_image_order(inputs, max_model):
    """KL with more histogram bins than quantized bins can clip (ORT's default cannot), and the
    histograms fed one image at a time do not depend on the order of the images."""
    onnx_path, images, root = inputs
    kl, kl_reversed = root / "head.int8-kl.onnx", root / "head.int8-kl-rev.onnx"
    record = quantize_head(onnx_path, kl, images, SIZE, method="kl", histogram_bins=256)
    quantize_head(onnx_path, kl_reversed, images[::-1], SIZE, method="kl", histogram_bins=256)
    assert record["ort_calibration"] == "Entropy"
    assert kl.read_bytes() != max_model[0].read_bytes()
    assert kl.read_bytes() == kl_reversed.read_bytes()
    assert fidelity_of_build(kl, onnx_path, images, SIZE)["cosine_min"] > 0.9


def test_unknown_method_names_the_allowed(inputs, tmp_path):
    onnx_path, images, _ = inputs
    with pytest.raises(ValueError, match=r"'max', 'kl', 'percentile'.*'minmax'"):
        quantize_head(onnx_path, tmp_path / "x.onnx", images, SIZE, method="minmax")
    assert not (tmp_path / "x.onnx").exists()


def test_percentile_on_an_untrained_head(inputs, tmp_path):
    """torchvision's init leaves class maps constant to 1e-6: ORT's own percentile histogram
    fails there ("Too many bins for data range"); ranges fixed by a MinMax pass do not."""
    _, images, _ = inputs
    flat = export_demo_head(tmp_path / "flat.onnx", SIZE, spread_weights=False)
    out = tmp_path / "flat.int8-percentile.onnx"
    quantize_head(flat, out, images, SIZE, method="percentile")
    assert fidelity_of_build(out, flat, images, SIZE)["cosine_min"] > 0.98
