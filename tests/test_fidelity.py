"""The fidelity limit: a build whose head maps drift past fidelity.min_cosine.<precision> fails
with the figures per map, and its fidelity.json is not written; a faithful build passes and
records the limit it was held to. Real ONNX Runtime sessions on demo images."""

import numpy as np
import pytest
import torch

from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.errors import FidelityError, RetinaflowError
from retinaflow.export import export_head_onnx
from retinaflow.fidelity import check_fidelity, measure_fidelity
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import OUTPUT_NAMES, HeadMaps
from retinaflow.runtime.onnxruntime_runner import OnnxRuntimeRunner

from .configs import OPSET, RESIZE_KERNEL, as_configured

SIZE = 64
PREPROCESS = (RESIZE_KERNEL, 1)  # measure_fidelity's resize kernel and batch size


def _head(path, seed):
    torch.manual_seed(seed)
    model = build_retinanet("demo", 6, SIZE)
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        torch.nn.init.kaiming_normal_(conv.weight)
    export_head_onnx(HeadMaps(model), path, SIZE, OPSET)
    return path


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity")
    make_demo_dataset(root / "demo", "val", 3)
    images = sorted((root / "demo" / "images").glob("*.jpg"))
    return _head(root / "good.onnx", 0), _head(root / "other.onnx", 1), images


def test_faithful_build_passes_and_records_its_limit(heads):
    reference, _, images = heads
    record = measure_fidelity(
        OnnxRuntimeRunner(reference), OnnxRuntimeRunner(reference), images, SIZE, *PREPROCESS
    )
    written = check_fidelity(record, 0.99999)
    assert written["limit"] == {"min_cosine": 0.99999}
    assert written["cosine_min"] == pytest.approx(1.0, abs=1e-12)  # the same session twice


def test_wrong_build_fails_with_the_figures(heads):
    """Another head's weights: a build that computes something else entirely."""
    reference, other, images = heads
    record = measure_fidelity(
        OnnxRuntimeRunner(other), OnnxRuntimeRunner(reference), images, SIZE, *PREPROCESS
    )
    with pytest.raises(FidelityError) as raised:
        check_fidelity(record, 0.99)
    assert isinstance(raised.value, RetinaflowError)
    message = as_configured(raised.value, min_cosine="fidelity.min_cosine.int8")
    assert "config key fidelity.min_cosine.int8 = 0.99" in message and "on 3 images" in message
    for name, figures in record["maps"].items():  # every map's figures, as measured
        line = next(x for x in message.splitlines() if x.strip().startswith(name + " "))
        assert f"worst cosine {figures['cosine_min']:.6f}" in line
        assert f"max abs error {figures['max_abs']:.4g}" in line
    assert f"to at most {np.floor(record['cosine_min'] * 1000) / 1000}" in message


def test_one_drifting_map_is_named_the_others_not(heads):
    """A build right on every map but one (its box map p3 negated): only that map is marked."""
    reference, _, images = heads
    runner = OnnxRuntimeRunner(reference)
    broken = OUTPUT_NAMES.index("bbox_regression_p3")

    def build(batch):
        maps = runner(batch)
        maps[broken] = -maps[broken]
        return maps

    record = measure_fidelity(build, runner, images, SIZE, *PREPROCESS)
    assert record["maps"]["bbox_regression_p3"]["cosine_min"] == pytest.approx(-1.0)
    with pytest.raises(FidelityError, match="1 of 10 maps fall below") as raised:
        check_fidelity(record, 0.999)
    marked = [x for x in str(raised.value).splitlines() if "<- below the limit" in x]
    assert len(marked) == 1 and "bbox_regression_p3" in marked[0]
    assert "set setting min_cosine to at most" in str(raised.value)
    # the limit is inclusive: a limit at the worst figure passes
    checked = check_fidelity(record, record["cosine_min"])
    assert checked["limit"]["min_cosine"] == record["cosine_min"]
