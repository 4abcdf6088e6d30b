"""int8 calibration of the exported head with onnxruntime.quantization: a QDQ ONNX per method.

The calibration images go through the same preprocessing as inference (data.images), so the
activation ranges are those the model sees at run time. Weights are int8, symmetric, per output
channel; activations are uint8 (asymmetric), ORT's choice for x86 CPUs with VNNI.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx
from tqdm import tqdm

from .data.images import preprocess_image
from .errors import SettingError
from .io import atomic_path
from .model.head import INPUT_NAME, OUTPUT_NAMES

CALIBRATION_METHODS = ("max", "kl", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
# ORT's Entropy default is 128 histogram bins for 128 quantized bins: its KL search then has a
# single candidate, the full range, and "kl" gives MinMax's model byte for byte. More bins
# (histogram_bins: 2048 in config/config.yaml, as TensorRT's entropy calibrator) let
# it clip outliers; ORT's search is a Python loop, quadratic in the bins: ~0.5 s per tensor
# at 2048 here.
KL_QUANTIZED_BINS = 128


class _ImageReader:
    """onnxruntime's CalibrationDataReader over image files, one image per feed; set_range
    lets the histogram pass feed one image at a time."""

    def __init__(self, paths: Sequence[str | os.PathLike], size: int, kernel: str):
        self.paths, self.size, self.kernel = list(paths), size, kernel
        self._bar = None
        self.set_range(0, len(self.paths))

    def __len__(self) -> int:
        return len(self.paths)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._pending = iter(self.paths[start_index:end_index])
        if start_index == 0:  # a new pass over the images: a new progress bar
            if self._bar is not None:
                self._bar.close()
            self._bar = tqdm(
                total=len(self.paths), desc="calibration", unit="img", file=sys.stderr,
                mininterval=0.5, delay=0.1,
            )  # fmt: skip

    def get_next(self) -> dict | None:
        path = next(self._pending, None)
        if path is None:
            return None
        self._bar.update()
        image = preprocess_image(path, (self.size, self.size), self.kernel)
        return {INPUT_NAME: image[None]}


def _minmax_ranges(model: Path, reader: _ImageReader, work: Path):
    """Per-tensor min and max over all images (ORT's MinMax calibrator: reductions only, so
    its memory does not grow with the number of images)."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    calibrator = create_calibrator(
        model,
        augmented_model_path=str(work / "minmax.onnx"),
        calibrate_method=CalibrationMethod.MinMax,
    )
    reader.set_range(0, len(reader))
    calibrator.collect_data(reader)
    return calibrator.compute_data()


def _histogram_ranges(
    model: Path, reader: _ImageReader, method, percentile: float, bins: int, work: Path
):
    """Entropy / Percentile thresholds from histograms over all images, one image at a time.

    ORT's histogram calibrators keep every activation of every image in memory (GBs per image
    for the real architecture at 800x800); fed in chunks, they size the bins from the first
    chunk and widen them as later chunks exceed it, so thresholds depend on the chunking and
    the image order. So: a MinMax pass fixes each tensor's range first, the histograms start
    empty over that range, and each image adds its counts to the same bins, as one pass over
    all images would. It also avoids ORT's "Too many bins for data range" on nearly constant
    maps (an untrained head's class maps).
    """
    import numpy as np
    from onnxruntime.quantization.calibrate import HistogramCollector, create_calibrator

    ranges = _minmax_ranges(model, reader, work)
    calibrator = create_calibrator(
        model,
        augmented_model_path=str(work / "histogram.onnx"),
        calibrate_method=method,
        extra_options={
            "percentile": percentile,
            "num_bins": bins,
            "num_quantized_bins": KL_QUANTIZED_BINS,
        },
    )
    collector = HistogramCollector(
        method=calibrator.method,
        symmetric=calibrator.symmetric,
        num_bins=calibrator.num_bins,
        num_quantized_bins=calibrator.num_quantized_bins,
        percentile=calibrator.percentile,
        scenario=calibrator.scenario,
    )
    empty = np.zeros(0, dtype=np.float32)
    for name in calibrator.tensors_to_calibrate:
        low, high = (np.float32(np.asarray(v).item()) for v in ranges[name].range_value)
        threshold = np.float32(max(abs(low), abs(high)))
        if collector.method == "percentile" and collector.symmetric:  # histogram of |x|
            hist, edges = np.histogram(empty, collector.num_bins, range=(0, threshold))
            collector.histogram_dict[name] = (hist, edges.astype(np.float32), low, high)
        else:  # histogram of x over [-threshold, threshold]
            hist, edges = np.histogram(empty, collector.num_bins, range=(-threshold, threshold))
            collector.histogram_dict[name] = (hist, edges, low, high, threshold)
    calibrator.collector = collector
    for i in range(len(reader)):
        reader.set_range(i, i + 1)
        calibrator.collect_data(reader)
    return calibrator.compute_data()


def quantize_head(
    onnx_path: str | os.PathLike,
    out_path: str | os.PathLike,
    image_paths: Sequence[str | os.PathLike],
    image_size: int,
    resize_kernel: str,
    method: str,
    per_channel: bool,
    activation_type: str,
    percentile: float,
    histogram_bins: int,
) -> dict:
    """Calibrate `onnx_path` on the images and write a QDQ model to `out_path` (atomically).
    The settings are the config's (preprocessing and quantization): no defaults here.

    Returns a small record of what was done (for a log or a meta file).
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )
    from onnxruntime.quantization.calibrate import save_tensors_data

    methods = {
        "max": CalibrationMethod.MinMax,
        "kl": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise SettingError("method", method, f"one of {', '.join(CALIBRATION_METHODS)}")
    if activation_type not in ACTIVATION_TYPES:
        raise SettingError(
            "activation_type", activation_type, f"one of {', '.join(ACTIVATION_TYPES)}"
        )
    if histogram_bins < 2 * KL_QUANTIZED_BINS:
        raise SettingError(
            "histogram_bins", histogram_bins, f"at least {2 * KL_QUANTIZED_BINS} (twice KL's bins)"
        )
    if not image_paths:
        raise ValueError(f"no calibration images given for {onnx_path}: the list is empty")
    reader = _ImageReader(image_paths, image_size, resize_kernel)
    act = QuantType.QUInt8 if activation_type == "uint8" else QuantType.QInt8
    with tempfile.TemporaryDirectory(prefix="retinaflow-quant-") as tmp:
        work = Path(tmp)
        # quant_pre_process cannot follow weights kept in a separate .data file: inline them.
        inline, prepared = work / "inline.onnx", work / "prepared.onnx"
        onnx.save(onnx.load(str(onnx_path)), str(inline), save_as_external_data=False)
        quant_pre_process(str(inline), str(prepared), skip_symbolic_shape=True)
        if method == "max":
            ranges = _minmax_ranges(prepared, reader, work)
        else:
            ranges = _histogram_ranges(
                prepared, reader, methods[method], percentile, histogram_bins, work
            )
        cache = work / "ranges.json"
        save_tensors_data(ranges, cache)
        with atomic_path(out_path) as out:
            quantize_static(
                str(prepared),
                str(out),
                None,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=act,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                calibration_cache_path=str(cache),
            )
            _check_outputs(out, onnx_path)
    return {
        "method": method,
        "ort_calibration": methods[method].name,
        "images": len(reader),
        "per_channel": per_channel,
        "activation_type": activation_type,
        "weight_type": "int8",
        "percentile": percentile if method == "percentile" else None,
        "histogram_bins": histogram_bins if method != "max" else None,
    }


def _check_outputs(quantized: Path, source: str | os.PathLike) -> None:
    names = [o.name for o in onnx.load(str(quantized), load_external_data=False).graph.output]
    if names != list(OUTPUT_NAMES):
        raise ValueError(
            f"quantizing {source} renamed the head maps: got {names}, expected {OUTPUT_NAMES}"
        )


def count_qdq_nodes(path: str | os.PathLike) -> dict[str, int]:
    """How many QuantizeLinear / DequantizeLinear nodes a model holds (0 for an fp32 model)."""
    ops = [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]
    return {op: ops.count(op) for op in ("QuantizeLinear", "DequantizeLinear")}
