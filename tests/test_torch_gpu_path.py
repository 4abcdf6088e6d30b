"""The PyTorch GPU path, tested on the CPU (CI has no GPU): the same code casts the head to
fp16/bf16, runs it channels-last, pads a short batch to the fixed one, compiles it, decodes and
resizes images with torchvision.io on a device; what only CUDA can run (graph capture) is
tested through the decision that picks it."""

import copy
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

from retinaflow.config_checks import config_problems
from retinaflow.data.images import iter_device_batches, preprocess_image
from retinaflow.detector import Detector
from retinaflow.model.loading import load_head
from retinaflow.postprocess import PostprocessSettings
from retinaflow.runtime import TORCH_VARIANTS, backend, is_cuda, open_runner, runner_settings
from retinaflow.runtime.torch_runner import (
    TorchOptions,
    TorchRunner,
    cuda_graph_decision,
    torch_options,
    variant_dtype,
)

from .configs import DEMO, REAL, ROOT, merge

WEIGHTS = ROOT / "resources/demo/retinanet_demo.pt"
MODEL = {"arch": "demo", "num_classes": 6, "image_size": 320}
SIZE = 160  # the trained demo head at a smaller input: real activations, a quick run


@pytest.fixture(scope="module")
def head():
    return load_head(WEIGHTS, **MODEL)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three demo images preprocessed as the demo infers (PIL kernel), NCHW float32."""
    from retinaflow.demo.dataset import make_demo_dataset

    root = tmp_path_factory.mktemp("demo-images")
    make_demo_dataset(root, "val", 3)
    paths = sorted((root / "images").glob("*.jpg"))
    return np.stack([preprocess_image(p, (SIZE, SIZE), "pil") for p in paths])


@pytest.fixture(scope="module")
def reference(head, images):
    # the runners below run 2 threads: a conv's sums in another thread count round otherwise
    torch.set_num_threads(2)
    with torch.inference_mode():
        return [m.numpy() for m in head(torch.from_numpy(images))]


def test_variants_name_their_backend_and_dtype():
    assert TORCH_VARIANTS == ("torch", "torch-fp16", "torch-bf16", "torch-int8")
    assert {backend(v) for v in TORCH_VARIANTS} == {"pytorch"}
    # torch-int8: its trunk's dtype (its heads are int8)
    dtypes = ["float32", "float16", "bfloat16", "float16"]
    assert [variant_dtype(v) for v in TORCH_VARIANTS] == dtypes
    assert backend("fp16") == "tvm"  # the TVM fp16 build is not a PyTorch variant
    with pytest.raises(ValueError, match="not a PyTorch variant"):
        variant_dtype("torch-fp8")


def test_cpu_fp32_stays_plain_eager_bit_for_bit(reference, images):
    """The config's torch section (channels_last, CUDA graphs) is for CUDA: on the CPU the
    torch variant returns numpy, the eager head's outputs bit for bit, as before."""
    runner = open_runner("torch", WEIGHTS, MODEL, 2, "cpu", 8, torch_settings=REAL["pytorch"])
    maps = runner(images)
    assert all(isinstance(m, np.ndarray) and m.dtype == np.float32 for m in maps)
    assert all(np.array_equal(r, m) for r, m in zip(reference, maps, strict=True))
    settings = runner_settings(runner)
    assert settings["device"] == "cpu" and settings["device_name"]
    assert settings["dtype"] == "float32" and settings["channels_last"] is False
    assert settings["cuda_graphs"] is False


def test_torch_options_apply_on_cuda_and_on_the_cpu_only_when_asked():
    settings = {**REAL["pytorch"], "channels_last": True, "compile": "default"}
    on_cpu = torch_options(settings, "float16", "cpu")
    assert on_cpu == TorchOptions(dtype="float16")  # plain eager NCHW, in the variant's dtype
    assert torch_options(settings, "float16", "cuda") == TorchOptions(
        "float16",
        True,
        "default",
        settings["cuda_graphs"],
        settings["deterministic"],
        settings["fuse_batch_norm"],
    )
    # deterministic kernels reach the runner, and its record (sharded GPU runs need them)
    exact = torch_options({**settings, "deterministic": True}, "float16", "cuda")
    assert exact.deterministic and asdict(exact)["deterministic"] is True
    forced = torch_options({**settings, "apply_on_cpu": True}, "bfloat16", "cpu")
    assert forced.channels_last and forced.compile == "default"
    assert torch_options(None, "float32", "cuda") == TorchOptions()
    # a shard's GPU (cuda:N, shards.shard_device) runs as `cuda` does: an earlier version
    # compared the name with "cuda" and ran GPU shards plain eager, maps copied to the host
    for shard_gpu in ("cuda:0", "cuda:1"):
        assert torch_options(settings, "float16", shard_gpu) == torch_options(
            settings, "float16", "cuda"
        )


def test_a_shards_gpu_is_cuda():
    assert [is_cuda(d) for d in ("cuda", "cuda:0", "cuda:3")] == [True, True, True]
    assert [is_cuda(d) for d in ("cpu", "cudax", "llvm")] == [False, False, False]


@pytest.mark.parametrize(
    "device,compile_mode,asked,expected",
    [
        ("cuda", "none", True, True),
        ("cuda:1", "none", True, True),  # a shard's GPU
        ("cuda", "default", True, True),
        ("cuda", "none", False, False),
        ("cpu", "none", True, False),  # graphs are CUDA's
        ("cuda", "reduce-overhead", True, False),  # inductor captures its own
        ("cuda", "max-autotune", True, False),
    ],
)
def test_cuda_graphs_only_where_they_can_run(device, compile_mode, asked, expected):
    use, reason = cuda_graph_decision(device, TorchOptions(compile=compile_mode, cuda_graphs=asked))
    assert use is expected
    assert reason == "on" if expected else reason.startswith("off (")


def _relative_errors(reference, maps) -> list[float]:
    return [
        float(np.linalg.norm(r.astype(np.float64) - m) / np.linalg.norm(r.astype(np.float64)))
        for r, m in zip(reference, maps, strict=True)
    ]


@pytest.mark.parametrize("dtype,mantissa_bits", [("float16", 10), ("bfloat16", 7)])
def test_reduced_precision_channels_last_within_rounding(
    head, images, reference, dtype, mantissa_bits
):
    """fp16/bf16 channels-last against fp32 eager. A rounding to a format of m mantissa bits
    is off by at most u = 2^-(m+1) relative (fp16 2^-11, bf16 2^-8). Each of the head's L
    convolutions rounds its input, its weights and its output: 3L independent roundings, whose
    relative errors add like a random walk, so a map's relative L2 error stays near
    u * sqrt(3L) (demo: L = 39; fp16 5.3e-3, bf16 4.2e-2; measured 1.7e-3 and 9e-3). A wrong
    cast, layout or dropped map is off by ~1."""
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in head.modules())
    bound = 2.0 ** -(mantissa_bits + 1) * math.sqrt(3 * convs)
    runner = TorchRunner(copy.deepcopy(head), 2, "cpu", TorchOptions(dtype, channels_last=True))
    maps = runner(images)
    assert all(m.dtype == np.float32 and m.shape == r.shape for m, r in zip(maps, reference))
    errors = _relative_errors(reference, maps)
    assert max(errors) < bound, (errors, bound)
    assert runner.settings()["dtype"] == dtype and runner.settings()["channels_last"]


def test_short_and_long_batches_run_at_the_fixed_batch(head, images, reference):
    """A fixed-batch head (compiled or graphed) pads a short batch with its last image and
    drops the padding; a longer batch runs in chunks. Checked on the eager head with the
    fixed batch set, so that every call goes through the padding."""
    runner = TorchRunner(copy.deepcopy(head), 2, "cpu")
    runner.batch_size = 2
    seen = []
    call = runner._fixed_call
    runner._fixed_call = lambda x, lend=False: seen.append(len(x)) or call(x, lend)
    for count in (1, 3):  # 1: padded to 2; 3: a chunk of 2, then 1 padded to 2
        maps = runner(images[:count])
        assert [m.shape[0] for m in maps] == [count] * 10
        expected = [r[:count] for r in reference]
        for r, m in zip(expected, maps, strict=True):
            np.testing.assert_allclose(m, r, rtol=1e-5, atol=1e-6)
    assert seen == [2, 2, 2]


class _ReplayedCall:
    """What a captured CUDA graph does, where CUDA cannot run: replay() writes the head's
    outputs for the static input into the same static output tensors."""

    def __init__(self, forward, x):
        self.forward, self.static_in = forward, x.clone()
        self.static_out = list(forward(self.static_in))

    def replay(self):
        for static, fresh in zip(self.static_out, self.forward(self.static_in), strict=True):
            static.copy_(fresh)


def test_each_thread_replays_a_graph_of_its_own_and_may_borrow_its_maps(head, images, reference):
    """The runner's CUDA-graph bookkeeping, with the capture (CUDA only) standing in: a
    thread's lent maps are its graph's own outputs, untouched by another thread's call (a
    shared graph would overwrite them), a plain call's maps are copies, and a batch run in
    several calls is never lent (the second call would overwrite the first's maps)."""
    import threading

    runner = TorchRunner(copy.deepcopy(head), 2, "cpu", keep_on_device=True)
    runner.batch_size, runner.graphs = 2, True
    captured = []

    def capture(x):
        captured.append(_ReplayedCall(runner.forward, x))
        call = captured[-1]
        return call, call.static_in, call.static_out

    runner._capture = capture
    lent = {}

    def first_two():
        lent["a"] = runner.lend(images[:2])
        other.start()
        other.join()

    other = threading.Thread(target=lambda: lent.update(b=runner.lend(images[1:3])))
    thread = threading.Thread(target=first_two)
    thread.start()
    thread.join()
    assert len(captured) == 2  # one graph a thread
    assert all(m is s for m, s in zip(lent["a"], captured[0].static_out, strict=True))
    for name, first in (("a", 0), ("b", 1)):
        expected = [r[first : first + 2] for r in reference]
        for r, m in zip(expected, lent[name], strict=True):
            np.testing.assert_allclose(m.numpy(), r, rtol=1e-5, atol=1e-6)
    copied = runner(images[:2])  # this thread's graph, its outputs copied out
    assert len(captured) == 3
    assert not any(m is s for m, s in zip(copied, captured[2].static_out, strict=True))
    several = runner.lend(images[:3])  # two calls: copies, concatenated
    for r, m in zip(reference, several, strict=True):
        np.testing.assert_allclose(m.numpy(), r, rtol=1e-5, atol=1e-6)


def test_tensor_input_and_device_output(head, images, reference):
    """A torch tensor is taken as it is (pinned host memory would go non-blocking to CUDA),
    and so is a list of CHW samples; keep_on_device returns torch tensors, float32, where the
    head ran."""
    runner = TorchRunner(copy.deepcopy(head), 2, "cpu", keep_on_device=True)
    maps = runner(torch.from_numpy(images))
    assert all(torch.is_tensor(m) and m.dtype == torch.float32 for m in maps)
    assert all(np.array_equal(r, m.numpy()) for r, m in zip(reference, maps, strict=True))
    # the LoadGen sample library's pinned samples on CUDA: a list, gathered on the device
    gathered = runner(list(torch.from_numpy(images)))
    assert all(np.array_equal(r, m.numpy()) for r, m in zip(reference, gathered, strict=True))
    # a half-precision head hands its maps over as they are: post-processing converts the few
    # values it keeps, not the whole maps
    half = TorchRunner(copy.deepcopy(head), 2, "cpu", TorchOptions("bfloat16"), keep_on_device=True)
    assert all(m.dtype == torch.bfloat16 for m in half(torch.from_numpy(images)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_samples_kept_in_the_head_dtype_give_the_same_maps(head, images, tmp_path, dtype):
    """LoadGen's sample library on a GPU keeps its samples cast to the head's dtype (half the
    bytes to copy in the timed path): the head must see exactly the input it sees when it
    casts a float32 batch itself, so the maps are equal bit for bit (here on the CPU, with the
    runner code a GPU runs)."""
    from retinaflow.data.annotations import ImageRecord
    from retinaflow.perf.qsl import SampleLibrary

    paths = []
    for i, image in enumerate(images):  # the fixture's inputs back as lossless files
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(paths[-1])
    records = [ImageRecord(i, p, SIZE, SIZE) for i, p in enumerate(paths)]
    qsl = SampleLibrary(records, SIZE, "pil", workers=2, dtype=dtype)
    qsl.load([2, 0, 1])
    samples = qsl.batch([0, 1, 2])
    assert [s.dtype for s in samples] == [dtype] * 3
    assert qsl.describe() == f"{str(dtype).removeprefix('torch.')} CHW"
    float32 = np.stack([preprocess_image(p, (SIZE, SIZE), "pil") for p in paths])
    for sample, image in zip(samples, float32, strict=True):  # the cast, and nothing else
        assert torch.equal(sample, torch.from_numpy(image).to(dtype))
    options = TorchOptions(str(dtype).removeprefix("torch."))
    runner = TorchRunner(copy.deepcopy(head), 2, "cpu", options, keep_on_device=True)
    from_samples = runner(samples)
    from_float32 = runner(float32)
    assert all(torch.equal(a, b) for a, b in zip(from_samples, from_float32, strict=True))


def test_detector_takes_the_maps_as_tensors(head, images, reference):
    detector = Detector(None, "demo", SIZE, PostprocessSettings(**DEMO["postprocess"]))
    originals = [(SIZE, SIZE)] * len(images)
    from_numpy = detector.postprocess_maps(reference, originals)
    from_tensors = detector.postprocess_maps([torch.from_numpy(m) for m in reference], originals)
    for a, b in zip(from_numpy, from_tensors, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in ("boxes", "scores", "labels"))


@pytest.mark.slow
def test_compiled_head_with_padding_on_the_cpu(head, images, reference):
    """torch.compile (inductor, dynamic=False) on the CPU: the GPU path's compile and its
    fixed batch, short batches padded (~30 s of compiling on 2 cores)."""
    options = TorchOptions("float32", channels_last=True, compile="default")
    runner = TorchRunner(copy.deepcopy(head), 2, "cpu", options, batch_size=2)
    for count in (2, 1, 3):
        maps = runner(images[:count])
        assert [m.shape[0] for m in maps] == [count] * 10
        assert max(_relative_errors([r[:count] for r in reference], maps)) < 1e-4
    settings = runner.settings()
    assert settings["compile"] == "default" and settings["fixed_batch"] == 2


def test_a_fixed_batch_is_required_where_one_is_compiled():
    with pytest.raises(ValueError, match="fixed batch_size"):
        TorchRunner(torch.nn.Identity(), 1, "cpu", TorchOptions(compile="default"))


def _jpeg(path, pixels, orientation=1, **save):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif, **save)
    return path


def test_device_decode_equals_the_torch_kernel(tmp_path):
    """preprocess.decode gpu's code (torchvision.io.decode_jpeg, EXIF orientation turned on the
    tensor, the torch kernel's resize) run with device cpu: the same tensors as the CPU torch
    kernel (PIL decode, exif_transpose), bit for bit, for colour JPEGs of two chroma
    subsamplings and EXIF orientations, a grayscale JPEG and a PNG (PIL's path). On CUDA
    nvJPEG's pixels differ (on the H200 by up to 97 levels at sharp colour edges); decode
    gpu-resize (the pool decodes on the host, the device resizes) keeps the CPU's: equal
    here too."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:301, 0:457]
    base = np.stack([(x / 2) % 256, (y / 3) % 256, ((x + y) / 5) % 256], -1)
    pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    paths = [
        _jpeg(tmp_path / "a.jpg", pixels, 1, quality=90, subsampling=0),
        _jpeg(tmp_path / "b.jpg", pixels, 6, quality=75, subsampling=2),  # rotated 270
        _jpeg(tmp_path / "c.jpg", pixels, 5, quality=95, subsampling=1),  # transposed
        _jpeg(tmp_path / "d.jpg", pixels, 3),  # rotated 180
        _jpeg(tmp_path / "e.jpg", pixels[:, :, 0]),  # grayscale
        tmp_path / "f.png",
    ]
    Image.fromarray(pixels).save(paths[-1])
    size = (128, 160)
    expected = np.stack([preprocess_image(p, size, "torch") for p in paths])
    for host_decode in (False, True):
        batches = list(iter_device_batches(paths, size, 4, "cpu", 2, host_decode=host_decode))
        assert [len(b) for b in batches] == [4, 2]
        got = torch.cat(batches)
        assert got.dtype == torch.float32 and got.device.type == "cpu"
        np.testing.assert_array_equal(got.numpy(), expected)


def test_gpu_decode_config_needs_the_torch_kernel_and_cuda():
    for decode in ("gpu", "gpu-resize"):
        good = merge(DEMO, {"preprocess": {"resize_kernel": "torch", "decode": decode}})
        good = merge(good, {"infer": {"device": "cuda"}})
        assert not [p for p in config_problems(good, str) if p.startswith("preprocess.decode")]
    for decode in ("gpu", "gpu-resize"):
        bad = merge(DEMO, {"preprocess": {"decode": decode}})  # pil kernel, cpu device
        problems = [p for p in config_problems(bad, str) if p.startswith("preprocess.decode")]
        assert len(problems) == 2
        assert "resize_kernel is pil" in problems[0] and "infer.device is cpu" in problems[1]
        assert problems[0].startswith(f"preprocess.decode: {decode} ")


@pytest.mark.parametrize("variant", ["torch-fp16", "torch-bf16"])
def test_cuda_is_refused_for_reduced_precision_variants_without_a_gpu(variant):
    from retinaflow.errors import DeviceError

    if torch.cuda.is_available():
        runner = open_runner(variant, WEIGHTS, MODEL, 1, "cuda", 2, torch_settings=REAL["pytorch"])
        assert runner_settings(runner)["device_name"] == torch.cuda.get_device_name()
        return
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        open_runner(variant, WEIGHTS, MODEL, 1, "cuda", 2, torch_settings=REAL["pytorch"])


def test_gpu_benchmark_runs_on_the_cpu(tmp_path, capsys):
    """`python -m retinaflow.benchmarks gpu --device cpu`: the GPU benchmark's code on a CPU,
    tiny: versions first, each stage timed, a table last, a JSON of every figure."""
    import json

    from retinaflow.benchmarks.gpu import main

    out = tmp_path / "gpu.json"
    argv = ["--device", "cpu", "--arch", "demo", "--size", "64", "--batch-sizes", "2"]
    argv += ["--variants", "torch", "torch-bf16", "torch-int8", "--iters", "1", "--warmup", "0"]
    assert main([*argv, "--threads", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("environment: torch ")
    assert printed.rstrip().splitlines()[-1] == f"figures: {out}"
    assert "pipe img/s" in printed and "2 batches in flight" in printed
    record = json.loads(out.read_text())
    rows = record["results"]
    assert [(r["variant"], r["batch"]) for r in rows] == [
        ("torch", 2),
        ("torch-bf16", 2),
        ("torch-int8", 2),  # its Triton kernels in the interpreter
    ]
    for row in rows:
        assert "error" not in row, row
        assert all(row[s] > 0 for s in ("h2d", "head", "post", "post_dense", "e2e", "pipelined"))
        assert row["pipelined_img_s"] == pytest.approx(2e3 / row["pipelined"])
        assert row["runner"]["device_name"] == record["environment"]["device_name"]
    assert rows[0]["max_rel_error_vs_fp32"] < 1e-5
    # int8: 5 quantized layers of ~0.5% relative noise each (per-tensor max scales, 127
    # levels) stay near 1-3%; a wrong tap order or scale gives errors of order 1
    assert rows[2]["max_rel_error_vs_fp32"] < 0.1
    assert rows[2]["runner"]["heads"].startswith("int8")


def test_gpu_benchmark_times_a_folder_of_images(tmp_path, capsys):
    """--images: the folder's images, sorted and repeated to fill the batch, preprocessed as
    the infer rule does, are what the benchmark times; a folder without images is refused
    before anything runs, naming it."""
    import json

    from retinaflow.benchmarks.gpu import input_batch, main, parse_args

    folder = tmp_path / "images"
    folder.mkdir()
    gen = np.random.default_rng(5)
    for name in ("b.png", "a.jpg", "c.jpeg"):
        Image.fromarray(gen.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    batch = input_batch(4, 32, folder, "pil")
    order = ["a.jpg", "b.png", "c.jpeg", "a.jpg"]
    expected = np.stack([preprocess_image(folder / f, (32, 32), "pil") for f in order])
    assert batch.dtype == torch.float32 and np.array_equal(batch.numpy(), expected)
    noise = input_batch(2, 32, None, "pil")
    assert torch.equal(noise, input_batch(2, 32, None, "mlperf"))  # seeded, kernel unused
    out = tmp_path / "gpu.json"
    argv = ["--device", "cpu", "--arch", "demo", "--size", "64", "--batch-sizes", "2"]
    argv += ["--variants", "torch", "--iters", "1", "--warmup", "0", "--threads", "2"]
    assert main([*argv, "--images", str(folder), "--json", str(out)]) == 0
    assert f"images of {folder}" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["settings"]["images"] == str(folder)
    assert "error" not in record["results"][0]
    empty = tmp_path / "empty"
    empty.mkdir()
    for missing in (empty, tmp_path / "nowhere"):
        with pytest.raises(SystemExit):
            parse_args(["--images", str(missing)])
        assert f"--images {missing}: no .jpg/.jpeg/.png files" in capsys.readouterr().err


def test_gpu_benchmark_times_onnx_runtime_in_both_precisions(tmp_path, capsys):
    """The ONNX Runtime peer rows on the CPU (CPUExecutionProvider; CUDAExecutionProvider on
    a GPU machine with onnxruntime-gpu): onnx (float32) and onnx-fp16 (converted: float16
    input and maps), the head timed through IO binding, each row naming its dtype."""
    import json

    from retinaflow.benchmarks.gpu import main

    out = tmp_path / "gpu.json"
    argv = ["--device", "cpu", "--arch", "demo", "--size", "64", "--batch-sizes", "2"]
    argv += ["--variants", "onnx", "onnx-fp16", "--iters", "1", "--warmup", "0"]
    assert main([*argv, "--threads", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["variant"], r["runner"]["dtype"]) for r in rows] == [
        ("onnx", "float32"),
        ("onnx-fp16", "float16"),
    ]
    for row in rows:
        assert "error" not in row, row
        assert row["h2d"] is None and all(row[s] > 0 for s in ("head", "post", "e2e", "pipelined"))
    assert rows[0]["max_rel_error_vs_fp32"] < 1e-5  # the same float32 arithmetic, reordered
    # float16: ~5e-4 relative a rounding, compounded over the demo's ~20 layers to ~1e-3
    # (measured 9e-4); a map left in float32 or a wrong cast would give 0 or ~1
    assert 1e-5 < rows[1]["max_rel_error_vs_fp32"] < 1e-2


def test_gpu_benchmark_reports_each_failure_and_goes_on(tmp_path, capsys):
    """Without a GPU every configuration fails with the device error: each row says so, the
    JSON is written, and the exit status is 1 (with a GPU: the run itself)."""
    import json

    from retinaflow.benchmarks.gpu import main

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the benchmark runs")
    out = tmp_path / "gpu.json"
    argv = ["--arch", "demo", "--size", "64", "--batch-sizes", "1", "2", "--iters", "1"]
    assert main([*argv, "--variants", "torch", "onnx", "--json", str(out)]) == 1
    rows = json.loads(out.read_text())["results"]
    assert len(rows) == 6  # torch with graphs off and on, onnx; two batches
    assert all("DeviceError" in row["error"] for row in rows)
    assert "DeviceError" in capsys.readouterr().out


def test_infer_with_device_decode_equals_the_cpu_loader(head, tmp_path):
    """infer_images with decode gpu or gpu-resize (run on the CPU device) finds what the CPU
    loader finds with the torch kernel, also with 2 or 3 batches in flight (infer.workers: the
    detector in threads; the results in order), and the timers hold the wait for batches
    beside the two stages."""
    from retinaflow.data.annotations import image_records, load_annotations
    from retinaflow.demo.dataset import make_demo_dataset
    from retinaflow.infer import infer_images

    annotations = make_demo_dataset(tmp_path, "val", 5)
    records = image_records(load_annotations(annotations), tmp_path / "images")
    settings = PostprocessSettings(**DEMO["postprocess"])
    found = {}
    for decode, in_flight in (("cpu", 1), ("gpu", 1), ("gpu", 3), ("gpu-resize", 2)):
        runner = TorchRunner(copy.deepcopy(head), 2, "cpu")
        detector = Detector(runner, "demo", SIZE, settings)
        results = infer_images(
            records, detector, "torch", 2, 2, decode, "cpu", False, in_flight=in_flight
        )
        found[decode, in_flight] = list(results)
        assert set(detector.timers.ms_per_image()) == {
            "preprocess_wait",
            "inference",
            "postprocess",
        }
    want = found["cpu", 1]
    for got in (found["gpu", 1], found["gpu", 3], found["gpu-resize", 2]):
        assert [r.id for r, _ in got] == [r.id for r, _ in want] == [r.id for r in records]
        for (_, a), (_, b) in zip(want, got, strict=True):
            assert all(np.array_equal(a[k], b[k]) for k in ("boxes", "scores", "labels"))
    assert sum(len(d["scores"]) for _, d in want) > 0


def test_a_failing_batch_in_flight_fails_the_run(head, tmp_path):
    """With batches in flight the detector runs in threads: an error in one reaches the
    caller as itself, not as a hang or a short result."""
    from retinaflow.data.annotations import image_records, load_annotations
    from retinaflow.demo.dataset import make_demo_dataset
    from retinaflow.infer import infer_images

    class FailsOnSecondBatch:
        device = "cpu"

        def __init__(self, runner):
            self.runner, self.calls = runner, 0

        def __call__(self, images):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("batch 2 broke")
            return self.runner(images)

    annotations = make_demo_dataset(tmp_path, "val", 5)
    records = image_records(load_annotations(annotations), tmp_path / "images")
    runner = FailsOnSecondBatch(TorchRunner(copy.deepcopy(head), 1, "cpu"))
    detector = Detector(runner, "demo", SIZE, PostprocessSettings(**DEMO["postprocess"]))
    with pytest.raises(RuntimeError, match="batch 2 broke"):
        list(infer_images(records, detector, "pil", 2, 1, "cpu", "cpu", False, in_flight=2))


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_loadgen_runs_a_reduced_precision_variant(tmp_path, scenario):
    """The perf rule's path for torch-bf16 with the torch section applied on the CPU
    (channels-last; CUDA graphs asked for but refused off CUDA): the record names the
    device, its name and the options that ran."""
    from retinaflow.demo.dataset import make_demo_dataset
    from retinaflow.io import read_json
    from retinaflow.perf import run_loadgen

    annotations = make_demo_dataset(tmp_path / "data", "val", 8)
    settings = {**REAL["pytorch"], "channels_last": True, "apply_on_cpu": True}
    short = {
        "Offline": {"min_duration_ms": 500, "min_query_count": 16, "target_qps": 40},
        "Server": {
            "min_duration_ms": 500,
            "min_query_count": 8,
            "target_qps": 10,
            "target_latency_ms": 500,
        },
    }[scenario]
    out = tmp_path / "perf.json"
    run_loadgen(
        "torch-bf16", WEIGHTS, annotations, tmp_path / "data/images", MODEL, scenario,
        "PerformanceOnly", short, out, tmp_path / "loadgen", threads=2, batch_size=4,
        performance_sample_count=8, resize_kernel=DEMO["preprocess"]["resize_kernel"],
        postprocess=DEMO["postprocess"], device="cpu", torch_settings=settings, workers=1,
    )  # fmt: skip
    record = read_json(out)
    assert record["samples"] >= short["min_query_count"] and record["batch_size"] == 4
    assert record["device"] == "cpu" and record["device_name"]
    runner = record["runner"]
    assert runner["dtype"] == "bfloat16" and runner["channels_last"] is True
    assert runner["cuda_graphs"] is False and "CUDA device" in runner["cuda_graphs_reason"]
    assert record["stages_ms"]["inference"] > 0 and record["stages_ms"]["postprocess"] > 0


def test_pipelined_timing_runs_every_thread_and_raises_a_failure():
    """benchmarks.gpu.pipelined_ms: each of the threads makes its untimed call and its timed
    ones; a step that fails in one thread is raised in the caller, the others let go."""
    import threading

    from retinaflow.benchmarks.gpu import pipelined_ms

    calls, lock = [], threading.Lock()

    def step():
        with lock:
            calls.append(threading.get_ident())

    assert pipelined_ms(step, 3, 4) > 0
    assert len(calls) == 3 * 5 and len(set(calls)) == 3

    first = threading.Lock()

    def failing():  # the first call of all fails, the other thread's go through
        if first.acquire(blocking=False):
            raise ValueError("broken step")

    with pytest.raises(ValueError, match="broken step"):
        pipelined_ms(failing, 2, 2)
