"""int8 calibration with ONNX Runtime: a QDQ model that keeps the head maps' names, departs
from fp32 a little (not at all would mean nothing was quantized), and per method.

Fidelity figures come from the QDQ model run simulated (tests/qdq.py: int8 rounding in float32,
the same on every x86-64 CPU); ONNX Runtime's own int8 kernels differ by CPU, so of them the
tests ask only what holds everywhere: they run and give finite maps of the right shapes.

Where the tests ask for cosine > 0.98: uint8 activations round to a step of range/255 per
tensor, noise of range/(255*sqrt(12)) ~ range/880; a map's RMS is ~range/4..range/8, so ~1% of
the signal per quantized layer and, adding in energy over the demo head's ~20 quantized
convolutions on a path, ~5% (cosine ~0.9987; 0.996-0.999 is seen). 0.98 allows 20% noise per
map, 4x that estimate, while a wrong scale, zero point or clipping falls far below."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.export import export_head_onnx
from retinaflow.fidelity import measure_fidelity
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import OUTPUT_NAMES, HeadMaps
from retinaflow.quantize import count_qdq_nodes, quantize_head
from retinaflow.runtime.onnxruntime_runner import OnnxRuntimeRunner

from .configs import OPSET, RESIZE_KERNEL, quantize_settings
from .qdq import SimulatedQdq, activation_scales

SIZE = 64
MIN_COSINE = 0.98  # from the quantization step: see the module docstring


def simulated_fidelity(qdq: Path, reference: Path, images) -> dict:
    """The QDQ model's maps, int8 rounding simulated in float32, against fp32 ONNX Runtime."""
    return measure_fidelity(
        SimulatedQdq(qdq), OnnxRuntimeRunner(reference), images, SIZE, RESIZE_KERNEL, 1
    )


def assert_int8_kernels_run(qdq: Path, reference: Path, images) -> None:
    """ONNX Runtime's int8 kernels (which differ by CPU) give finite maps of the fp32 shapes."""
    from retinaflow.data.images import iter_batches

    batch = next(iter_batches(list(images), (SIZE, SIZE), "pil", len(images)))
    int8_maps, fp32_maps = OnnxRuntimeRunner(qdq)(batch), OnnxRuntimeRunner(reference)(batch)
    for name, got, want in zip(OUTPUT_NAMES, int8_maps, fp32_maps, strict=True):
        assert got.shape == want.shape and np.isfinite(got).all(), name


def export_demo_head(path: Path, size: int, spread_weights: bool = True) -> Path:
    """A demo-architecture head with random weights. torchvision's init leaves the class maps
    of an untrained head nearly constant (tiny weights, prior bias); Kaiming weights give maps
    that vary, as a trained model's do."""
    torch.manual_seed(0)
    model = build_retinanet("demo", 6, size)
    if spread_weights:
        for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
            torch.nn.init.kaiming_normal_(conv.weight)
    export_head_onnx(HeadMaps(model), path, size, OPSET)
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
    record = quantize_head(onnx_path, out, images, SIZE, **quantize_settings(method="max"))
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
    report = simulated_fidelity(max_model[0], onnx_path, images)
    assert report["images"] == 6 and set(report["maps"]) == set(OUTPUT_NAMES)
    assert report["cosine_min"] > MIN_COSINE
    # rounding to range/255 moves some value of every map by up to half a step, ~2e-3 of its
    # range: below 1e-4 would mean nothing was quantized
    assert report["max_rel"] > 1e-4
    assert_int8_kernels_run(max_model[0], onnx_path, images)


def test_kl_clips_and_ignores_image_order(inputs, max_model):
    """KL with more histogram bins than quantized bins can clip (ORT's default cannot), and the
    histograms fed one image at a time do not depend on the order of the images."""
    onnx_path, images, root = inputs
    kl, kl_reversed = root / "head.int8-kl.onnx", root / "head.int8-kl-rev.onnx"
    kl_settings = quantize_settings(method="kl", histogram_bins=256)
    record = quantize_head(onnx_path, kl, images, SIZE, **kl_settings)
    quantize_head(onnx_path, kl_reversed, images[::-1], SIZE, **kl_settings)
    assert record["ort_calibration"] == "Entropy"
    assert kl.read_bytes() != max_model[0].read_bytes()
    assert kl.read_bytes() == kl_reversed.read_bytes()
    # KL's threshold may fall to half the MinMax range (its search starts at 128 of the 256
    # bins): values above it saturate, an error the step does not bound (0.958 is seen). 0.9
    # (45% noise/signal) asks only that the maps keep their shape through the clipping.
    assert simulated_fidelity(kl, onnx_path, images)["cosine_min"] > 0.9
    # KL may only narrow MinMax's ranges (its thresholds are bins of the MinMax histogram)
    kl_scales, max_scales = activation_scales(kl), activation_scales(max_model[0])
    assert kl_scales.keys() == max_scales.keys()
    assert all(kl_scales[t] <= max_scales[t] * (1 + 1e-6) for t in kl_scales)
    assert any(kl_scales[t] < max_scales[t] * 0.99 for t in kl_scales)  # something was clipped


def test_unknown_method_names_the_allowed(inputs, tmp_path):
    onnx_path, images, _ = inputs
    with pytest.raises(ValueError, match=r"setting method is 'minmax': one of max, kl, percentile"):
        quantize_head(
            onnx_path, tmp_path / "x.onnx", images, SIZE, **quantize_settings(method="minmax")
        )
    assert not (tmp_path / "x.onnx").exists()


def test_percentile_on_an_untrained_head(inputs, tmp_path):
    """torchvision's init leaves class maps constant to 1e-6: ORT's own percentile histogram
    fails there ("Too many bins for data range"); ranges fixed by a MinMax pass do not. The
    percentile thresholds lie inside the MinMax ranges (clipping narrows, never widens), and
    the model stays as close to fp32 as int8 rounding allows."""
    _, images, _ = inputs
    flat = export_demo_head(tmp_path / "flat.onnx", SIZE, spread_weights=False)
    out, by_max = tmp_path / "flat.int8-percentile.onnx", tmp_path / "flat.int8-max.onnx"
    quantize_head(flat, out, images, SIZE, **quantize_settings(method="percentile"))
    quantize_head(flat, by_max, images, SIZE, **quantize_settings(method="max"))
    clipped, full = activation_scales(out), activation_scales(by_max)
    assert clipped.keys() == full.keys() and len(clipped) > 20
    # a threshold is an edge of the histogram over the MinMax range: never above it (1e-6 for
    # the float32 of the scales), and for some tensor at least one of the 2048 bins below it,
    # or percentile clipped nothing (99.999% of ~1e5 values per tensor leaves a few outside)
    assert all(clipped[t] <= full[t] * (1 + 1e-6) for t in clipped)
    assert any(clipped[t] <= full[t] * (1 - 1 / 2048 + 1e-6) for t in clipped)
    assert simulated_fidelity(out, flat, images)["cosine_min"] > MIN_COSINE
    assert_int8_kernels_run(out, flat, images)
