"""A device that is not there is an error before any image runs, for every runtime, and a
runner reports the device that really runs. CI has no GPU, so there `cuda` must be refused;
on a machine with one, the same tests require the runner to say it runs on it."""

import numpy as np
import pytest
import torch

from retinaflow.errors import DeviceError
from retinaflow.export import export_head_onnx
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.runtime import open_runner
from retinaflow.runtime.tvm_runner import TvmRunner

from .configs import OPSET

SIZE = 64
MODEL = {"arch": "demo", "num_classes": 6, "image_size": SIZE}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The demo head's weights, its ONNX export and a tiny TVM library (a real build)."""
    from tvm import relax

    root = tmp_path_factory.mktemp("device")
    torch.manual_seed(0)
    model = build_retinanet(**MODEL)
    torch.save(model.state_dict(), root / "weights.pt")
    export_head_onnx(HeadMaps(model), root / "head.onnx", SIZE, OPSET)

    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 3, SIZE, SIZE), "float32"))
    with builder.function("main", [x]):
        builder.emit_func_output(x)
    relax.build(builder.get(), target="llvm").export_library(str(root / "module.so"))
    return root


def _gpu_present(variant: str) -> bool:
    if variant == "onnx":
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    if variant == "tvm":
        import tvm

        return bool(tvm.cuda(0).exist)
    return torch.cuda.is_available()


@pytest.mark.parametrize("variant", ["onnx", "torch", "tvm"])
def test_cuda_is_refused_where_there_is_none(artifacts, variant):
    path = {"onnx": "head.onnx", "torch": "weights.pt", "tvm": "module.so"}[variant]
    if variant == "tvm":
        open_cuda = lambda: TvmRunner(artifacts / path, device="cuda")  # noqa: E731
    else:
        open_cuda = lambda: open_runner(variant, artifacts / path, MODEL, 1, "cuda")  # noqa: E731
    if _gpu_present(variant):
        assert open_cuda().device == "cuda"
        return
    with pytest.raises(DeviceError, match="cuda"):
        open_cuda()


@pytest.mark.parametrize("variant", ["onnx", "torch"])
def test_runner_reports_the_device_it_runs_on(artifacts, variant):
    path = {"onnx": "head.onnx", "torch": "weights.pt"}[variant]
    runner = open_runner(variant, artifacts / path, MODEL, 1, "cpu")
    assert runner.device == "cpu"
    maps = runner(np.zeros((1, 3, SIZE, SIZE), dtype=np.float32))
    assert len(maps) == 10


def test_unknown_device_is_refused(artifacts):
    with pytest.raises(DeviceError, match="'tpu'"):
        open_runner("onnx", artifacts / "head.onnx", MODEL, 1, "tpu")


def test_a_gpu_index_is_part_of_the_device_name():
    """A shard of inference runs on `cuda:N` (retinaflow.shards.shard_device)."""
    from retinaflow.runtime import split_device

    assert split_device("cpu") == ("cpu", 0)
    assert split_device("cuda") == ("cuda", 0)
    assert split_device("cuda:1") == ("cuda", 1)
    assert split_device("cpu:1")[0] == "cpu:1"  # refused by name in every runner
    with pytest.raises(DeviceError, match="'cpu:1'"):
        open_runner("onnx", "unused.onnx", MODEL, 1, "cpu:1")


def test_a_gpu_index_beyond_the_visible_gpus_is_refused(artifacts):
    with pytest.raises(DeviceError, match="cuda"):
        open_runner(
            "torch", artifacts / "weights.pt", MODEL, 1, f"cuda:{torch.cuda.device_count()}"
        )
