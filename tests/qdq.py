"""A CPU-independent reference for QDQ models: ONNX Runtime with graph optimizations off runs
each QuantizeLinear / DequantizeLinear node as written and the convolutions in float32 on the
dequantized weights, so int8 rounding is modelled and no int8 kernel runs. ONNX Runtime's
optimized sessions fuse the nodes into int8 kernels that differ by CPU (VNNI: exact int32
sums; AVX2 without VNNI: vpmaddubsw, which saturates pairs of u8*s8 products to int16), so
figures from those kernels are not the same on every x86-64 CPU; figures from this are, up to
float32 summation order."""

from __future__ import annotations

import os

import numpy as np

from retinaflow.model.head import INPUT_NAME, OUTPUT_NAMES


class SimulatedQdq:
    """A HeadRunner for a QDQ model with every graph optimization disabled."""

    def __init__(self, path: str | os.PathLike):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})


def activation_scales(path: str | os.PathLike) -> dict[str, float]:
    """Per activation tensor (QuantizeLinear's input), its quantization step (scalar scale)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    scales = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits:
            scales[node.input[0]] = float(inits[node.input[1]])
    return scales
