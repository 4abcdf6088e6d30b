"""The int8 build's integer convolutions (retinaflow.integer_convs): QDQ convs rewritten to
u8 x s8 -> int32 conv2d + requantize.

A single quantized conv is compared bit for bit with numpy: its int32 accumulator is exact
integer arithmetic and the requantize is the float32 formula ORT's QLinearConv uses
(round(float32(acc) * M) + zp, M = s_x * s_w / s_y in float32, round half to even), so there
is nothing to tolerate.

The demo head is compared with ONNX Runtime running the same QDQ model with its int8 kernels.
Both end every quantized tensor on the same u8 grid, so the maps differ by whole steps of each
map's output scale or not at all. Where ORT's kernels are exact (u8 x s8 products summed into
int32: VNNI, AVX512) and requantize with the same float32 M, every integer conv gives the same
u8 as TVM's and the float ops between them (residual / FPN adds, resize) run on the same u8
values: the maps are identical, and the test asks for that on a CPU with VNNI. Elsewhere ORT's
kernels may differ (AVX2 without VNNI sums pairs of u8*s8 with vpmaddubsw, saturating at int16;
QLinearAdd uses its own arithmetic): an intermediate value that lands on the other side of a
rounding boundary moves by one step, and downstream layers carry that as at most a few steps.
How far such a flip carries is measured against the simulated QDQ reference (float32 convs,
whose summation order flips near-ties far more often than any int8 kernel): up to 5 steps on
the demo images, whose flat backgrounds make one flip move a whole region. The bound asked for
everywhere is 8 steps of each map's scale; a wrong zero point, scale, padding or bias fold
moves maps by tens of steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from retinaflow.compile import compile_head
from retinaflow.data.images import iter_batches
from retinaflow.demo.dataset import make_demo_dataset
from retinaflow.model.head import OUTPUT_NAMES
from retinaflow.quantize import quantize_head
from retinaflow.runtime import open_runner
from retinaflow.runtime.onnxruntime_runner import OnnxRuntimeRunner

from .configs import FP16_ACCUMULATE, quantize_settings
from .qdq import SimulatedQdq
from .test_quantize import export_demo_head

SIZE = 64
MAX_STEPS = 8  # see the module docstring


# ---------------------------------------------------------------- a single quantized conv


def _conv_case(rng, channels, out_channels, kernel, stride, pads, groups, dilation, bias) -> dict:
    """Random u8 input with its zero point, s8 per-channel weights, int32 bias at s_x * s_w,
    and an output scale / zero point from the accumulator's range (as calibration would)."""
    x = rng.integers(0, 256, size=(1, channels, 11, 13), dtype=np.uint8)
    w = rng.integers(-127, 128, size=(out_channels, channels // groups, kernel, kernel))
    w = w.astype(np.int8)
    s_x, zp_x = np.float32(0.02), np.uint8(rng.integers(90, 140))
    s_w = rng.uniform(0.001, 0.01, size=out_channels).astype(np.float32)
    b = rng.integers(-5000, 5000, size=out_channels).astype(np.int32) if bias else None
    case = dict(x=x, w=w, b=b, s_x=s_x, zp_x=zp_x, s_w=s_w, stride=stride, pads=pads)
    case.update(groups=groups, dilation=dilation)
    acc = reference_accumulator(case)
    real = acc * (s_x * s_w.astype(np.float64)).reshape(1, -1, 1, 1)
    low, high = min(real.min(), 0.0), max(real.max(), 0.0)
    case["s_y"] = np.float32((high - low) / 255)
    case["zp_y"] = np.uint8(np.clip(np.round(-low / case["s_y"]), 0, 255))
    return case


def reference_accumulator(case: dict) -> np.ndarray:
    """numpy int64 conv of (x - zp_x) with W, + bias: the exact integer accumulator."""
    x = case["x"].astype(np.int64) - int(case["zp_x"])
    top, left, bottom, right = case["pads"]
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # zero after the shift
    w = case["w"].astype(np.int64)
    out_c, in_per_group, kh, kw = w.shape
    groups, (sh, sw), (dh, dw) = case["groups"], case["stride"], case["dilation"]
    height = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    width = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    acc = np.zeros((1, out_c, height, width), dtype=np.int64)
    per_group = out_c // groups
    for o in range(out_c):
        g = o // per_group
        xs = x[0, g * in_per_group : (g + 1) * in_per_group]
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * height, sh)
                cols = slice(j * dw, j * dw + sw * width, sw)
                window = xs[:, rows, cols][:, :height, :width]
                acc[0, o] += np.tensordot(w[o, :, i, j], window, axes=1)
    if case["b"] is not None:
        acc += case["b"].astype(np.int64).reshape(1, -1, 1, 1)
    assert np.abs(acc).max() < 2**31
    return acc


def reference_output(case: dict) -> np.ndarray:
    """The u8 output: ORT QLinearConv's requantize of the exact accumulator."""
    acc = reference_accumulator(case).astype(np.int32)
    multiplier = (case["s_x"] * case["s_w"]) / case["s_y"]  # float32, as ORT computes it
    scaled = acc.astype(np.float32) * multiplier.reshape(1, -1, 1, 1).astype(np.float32)
    return np.clip(np.rint(scaled) + np.float32(case["zp_y"]), 0, 255).astype(np.uint8)


def qdq_conv_model(case: dict, path: Path) -> Path:
    """u8 input -> DQ -> Conv(DQ(W s8, per channel), DQ(B int32)) -> Q -> u8 output."""
    w, b = case["w"], case["b"]
    out_shape = list(reference_accumulator(case).shape)
    inits = [
        numpy_helper.from_array(np.array(case["s_x"]), "s_x"),
        numpy_helper.from_array(np.array(case["zp_x"]), "zp_x"),
        numpy_helper.from_array(w, "w_q"),
        numpy_helper.from_array(case["s_w"], "s_w"),
        numpy_helper.from_array(np.zeros(w.shape[0], np.int8), "zp_w"),
        numpy_helper.from_array(np.array(case["s_y"]), "s_y"),
        numpy_helper.from_array(np.array(case["zp_y"]), "zp_y"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s_x", "zp_x"], ["x_f"]),
        helper.make_node("DequantizeLinear", ["w_q", "s_w", "zp_w"], ["w_f"], axis=0),
    ]
    conv_inputs = ["x_f", "w_f"]
    if b is not None:
        inits += [
            numpy_helper.from_array(b, "b_q"),
            numpy_helper.from_array((case["s_x"] * case["s_w"]).astype(np.float32), "s_b"),
            numpy_helper.from_array(np.zeros(w.shape[0], np.int32), "zp_b"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "s_b", "zp_b"], ["b_f"], axis=0))
        conv_inputs.append("b_f")
    top, left, bottom, right = case["pads"]
    nodes += [
        helper.make_node(
            "Conv",
            conv_inputs,
            ["y_f"],
            strides=list(case["stride"]),
            pads=[top, left, bottom, right],
            dilations=list(case["dilation"]),
            group=case["groups"],
            kernel_shape=list(w.shape[2:]),
        ),
        helper.make_node("QuantizeLinear", ["y_f", "s_y", "zp_y"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq_conv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, list(case["x"].shape))],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def run_integer_conv(path: Path, x: np.ndarray):
    """Import, rewrite and run one QDQ conv in TVM: its u8 output and the rewrite's report."""
    import onnx as onnx_lib
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from retinaflow.compile import conv_input_dtypes, lower_to_fused_tir
    from retinaflow.integer_convs import rewrite_integer_convs

    imported = from_onnx(onnx_lib.load(str(path)), keep_params_in_input=False)
    mod, report = rewrite_integer_convs(imported)
    assert conv_input_dtypes(mod) == ["uint8*int8"]
    target = tvm.target.Target("llvm")
    with tvm.transform.PassContext(opt_level=3):
        executable = tvm.compile(lower_to_fused_tir(mod, target), target=target)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy(), report


CONV_CASES = {
    # name: (channels, out_channels, kernel, stride, pads (t, l, b, r), groups, dilation, bias)
    "3x3-stride1-pad1": (8, 16, 3, (1, 1), (1, 1, 1, 1), 1, (1, 1), True),
    "3x3-stride2-pad1": (8, 16, 3, (2, 2), (1, 1, 1, 1), 1, (1, 1), True),
    "3x3-groups4-stride2": (16, 32, 3, (2, 2), (1, 1, 1, 1), 4, (1, 1), True),
    "3x3-depthwise-uneven-pad": (8, 8, 3, (1, 2), (0, 1, 2, 1), 8, (1, 1), True),
    "1x1-stride2-no-bias": (16, 8, 1, (2, 2), (0, 0, 0, 0), 1, (1, 1), False),
    "3x3-dilation2": (8, 8, 3, (1, 1), (2, 2, 2, 2), 2, (2, 2), True),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_single_conv_is_bit_exact(name, tmp_path):
    rng = np.random.default_rng(sum(map(ord, name)))
    case = _conv_case(rng, *CONV_CASES[name])
    got, report = run_integer_conv(qdq_conv_model(case, tmp_path / "conv.onnx"), case["x"])
    want = reference_output(case)
    assert report.convs_total == 1 and report.convs_integer == 1 and not report.skipped
    assert got.dtype == np.uint8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    # the case exercises the requantize: outputs spread over the u8 range, few clipped
    assert len(np.unique(want)) > 50 and np.mean((want == 0) | (want == 255)) < 0.05


def test_float_conv_stays_float(tmp_path):
    """A conv without QDQ around it is left alone, and the report says so."""
    from tvm.relax.frontend.onnx import from_onnx

    from retinaflow.integer_convs import rewrite_integer_convs

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "float_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    _, report = rewrite_integer_convs(from_onnx(model, keep_params_in_input=False))
    assert (report.convs_total, report.convs_integer, report.convs_float) == (1, 0, 1)
    assert report.stays_float == {"nn.conv2d": 1}


# ---------------------------------------------------------------- the demo head


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Demo head (Kaiming random weights), four demo images, its int8-max QDQ model and the
    TVM int8 build of it."""
    root = tmp_path_factory.mktemp("intconv")
    onnx_path = export_demo_head(root / "head.onnx", SIZE)
    make_demo_dataset(root / "demo", "val", 4)
    images = sorted((root / "demo" / "images").glob("*.jpg"))
    qdq = root / "head.int8-max.onnx"
    quantize_head(onnx_path, qdq, images, SIZE, **quantize_settings(method="max"))
    so, meta = root / "int8" / "module.so", root / "int8" / "meta.json"
    compile_head(qdq, so, meta, None, "int8", [1, 3, SIZE, SIZE], fp16_accumulate=FP16_ACCUMULATE)
    return {"qdq": qdq, "images": images, "so": so, "meta": json.loads(meta.read_text())}


def output_scales(qdq: Path) -> dict[str, float]:
    """Each head map's scale: the DequantizeLinear that gives the graph output."""
    model = onnx.load(str(qdq))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {
        n.output[0]: float(inits[n.input[1]])
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.output[0] in OUTPUT_NAMES
    }


def cpu_has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def _steps(demo, reference) -> dict[str, np.ndarray]:
    """Per map, |TVM - reference| in steps of the map's output scale, over the demo images."""
    scales = output_scales(demo["qdq"])
    build = open_runner("int8", demo["so"])
    steps: dict[str, list] = {name: [] for name in OUTPUT_NAMES}
    for batch in iter_batches(list(demo["images"]), (SIZE, SIZE), "pil", 1):
        for name, got, want in zip(OUTPUT_NAMES, build(batch), reference(batch), strict=True):
            steps[name].append(np.abs(got - want).ravel() / scales[name])
    return {name: np.concatenate(values) for name, values in steps.items()}


def _assert_whole_steps_within_bound(steps: dict[str, np.ndarray]) -> None:
    for name, s in steps.items():
        # dequantized u8 on both sides: a difference is a whole number of steps
        np.testing.assert_allclose(s, np.round(s), atol=1e-3, err_msg=name)
        assert s.max() <= MAX_STEPS, (name, s.max())
        assert s.mean() < 1, (name, s.mean())  # not systematically off


def test_demo_head_matches_onnxruntime_int8(demo):
    steps = _steps(demo, OnnxRuntimeRunner(demo["qdq"]))
    _assert_whole_steps_within_bound(steps)
    if cpu_has_vnni():  # ORT's u8 x s8 kernels sum exactly: the same integers as TVM's
        assert all(s.max() == 0 for s in steps.values()), {n: s.max() for n, s in steps.items()}


def test_demo_head_close_to_simulated_qdq(demo):
    """Against the CPU-independent reference (QDQ nodes as written, float32 convs)."""
    _assert_whole_steps_within_bound(_steps(demo, SimulatedQdq(demo["qdq"])))


def test_meta_reports_integer_convs(demo):
    meta = demo["meta"]
    qdq_convs = sum(n.op_type == "Conv" for n in onnx.load(str(demo["qdq"])).graph.node)
    assert meta["int8_execution"] == "integer"
    assert meta["integer_convs"] == qdq_convs > 0 and meta["float_convs"] == 0
    assert meta["conv_input_dtypes"] == ["uint8*int8"]
    # untuned: no schedule tensorizes, so no 512-bit vpdpbusd (LLVM's own 128-bit ones aside)
    assert meta["intrinsic"] == "none" and meta["vnni_tensorized_functions"] == 0
    assert meta["vnni_layout_convs"] == (qdq_convs if cpu_has_vnni() else 0)
    assert not meta["not_rewritten"]
    # what stays float: the preprocessing, the residual / FPN adds, the FPN resizes, the P6
    # ReLU, and the quantize / dequantize at the ends of the integer chains; no conv
    stays = meta["stays_float"]
    assert "nn.conv2d" not in stays and stays["add"] == 10 and stays["image.resize2d"] == 2
    assert stays["quantize"] < qdq_convs // 4  # chains: far fewer Q than convs


# ---------------------------------------------------------------- the VNNI path


def _tuned_conv(path: Path, x: np.ndarray, target_json: dict, work_dir: Path, trials: int):
    """Import, rewrite (integer convs, and the VNNI layout where `target` has VNNI), tune with
    `trials` candidates, compile with the database and run: (u8 output, meta-like dict)."""
    import onnx as onnx_lib
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from retinaflow.compile import apply_precision, apply_tuning_database, lower_to_fused_tir
    from retinaflow.tuning import tune_module
    from retinaflow.vnni import uses_vnni

    target = tvm.target.Target(target_json)
    imported = from_onnx(onnx_lib.load(str(path)), keep_params_in_input=False)
    report: dict = {}
    mod, _ = apply_precision(imported, "int8", int8_report=report, target=target)
    mod = lower_to_fused_tir(mod, target)
    tune_module(mod, target, work_dir, trials, trials_per_iter=trials)
    mod = apply_tuning_database(mod, target, work_dir)
    with tvm.transform.PassContext(opt_level=3):
        executable = tvm.compile(mod, target=target)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    report["uses_vnni"] = uses_vnni(executable)
    return vm["main"](tvm.runtime.tensor(x)).numpy(), report


VNNI_CASES = {
    # channels not multiples of 4 / 16 (padded), stride, asymmetric padding, dilation
    "3x3-stem-3ch-stride2": (3, 32, 3, (2, 2), (1, 1, 1, 1), 1, (1, 1), True),
    "3x3-54-out-uneven-pad": (16, 54, 3, (1, 1), (0, 1, 2, 1), 1, (1, 1), True),
}


@pytest.mark.parametrize("name", list(VNNI_CASES))
def test_tuned_conv_is_bit_exact(name, tmp_path):
    """The host target: on a VNNI CPU the conv moves to the packed layout and a 4-trial tuning
    tensorizes it with vpdpbusd; elsewhere it stays the NCHW integer conv (no intrinsic). Both
    must equal the numpy reference bit for bit."""
    from retinaflow.compile import default_target

    rng = np.random.default_rng(sum(map(ord, name)))
    case = _conv_case(rng, *VNNI_CASES[name])
    target = default_target()
    got, report = _tuned_conv(
        qdq_conv_model(case, tmp_path / "conv.onnx"), case["x"], target, tmp_path / "db", 4
    )
    np.testing.assert_array_equal(got, reference_output(case))
    if cpu_has_vnni():
        assert report["vnni_layout_convs"] == 1 and report["uses_vnni"], report
    else:
        assert report["vnni_layout_convs"] == 0 and not report["uses_vnni"], report


def test_non_vnni_target_keeps_nchw_integer_convs(tmp_path):
    """A target without VNNI (no mcpu: generic x86-64) keeps the NCHW integer conv, tuned
    without the intrinsic, and stays exact; this runs on any x86 CPU."""
    name = "3x3-stride1-pad1"
    case = _conv_case(np.random.default_rng(7), *CONV_CASES[name])
    got, report = _tuned_conv(
        qdq_conv_model(case, tmp_path / "conv.onnx"),
        case["x"],
        {"kind": "llvm", "num-cores": 2},
        tmp_path / "db",
        4,
    )
    np.testing.assert_array_equal(got, reference_output(case))
    assert report["vnni_layout_convs"] == 0 and not report["uses_vnni"]


def test_vnni_detection_follows_the_target():
    import tvm

    from retinaflow.vnni import target_has_vnni

    assert not target_has_vnni(tvm.target.Target({"kind": "llvm"}))
    assert not target_has_vnni(tvm.target.Target({"kind": "llvm", "mcpu": "skylake"}))
    assert target_has_vnni(tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake"}))
    assert target_has_vnni(tvm.target.Target({"kind": "llvm", "mcpu": "znver4"}))
