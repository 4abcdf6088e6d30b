"""Run in the tenth lease (lease10-chains.txt; the default went on): the int8 heads' chains on streams of their own
(Int8Head.concurrent, model/int8_head.py, off by default until this has run) against one
after another (issue 13); if they win, the default goes on. lease10_b.sh runs it; alone, from
the repository root on nvidia-h200 with .whl carried, about 3 minutes:

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    PYTHONPATH=$PWD/src:/tmp/site python3 benchmarks/records/gpu-h200/scripts/lease10_chains.py

The torch-int8 head as lend8.py builds it (batch 32, compiled, fused trunk, CUDA graphs,
random weights, class bias -1), twice: concurrent chains and not (two runners, each its own
graph). Alternating, twice each: the head's time (CUDA events, lent maps, median of 20) and
the Detector's pipelined rate with 2 threads (the gpu benchmark's `pipelined`), then the maps
of both, which must be equal (int8 sums are exact; the trunk is the same compiled code)."""
import copy, os, sys, torch
from retinaflow.benchmarks.gpu import pipelined_ms
from retinaflow.detector import Detector
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.model.int8_head import Int8Head, calibrate
from retinaflow.postprocess import PostprocessSettings
from retinaflow.runtime.torch_runner import TorchOptions, TorchRunner

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grouped_conv_bench import bench  # noqa: E402  the records' CUDA-event timer

S = PostprocessSettings(0.05, 1000, 0.5, 300)
N = 32
torch.manual_seed(0)
head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval()
with torch.no_grad():
    head.classification_head.cls_logits.bias.fill_(-1.0)
x = torch.rand(N, 3, 800, 800)
amax = calibrate(copy.deepcopy(head).cuda(), [x[:4].cuda()])
opts = TorchOptions(dtype="float16", channels_last=True, compile="default", cuda_graphs=True, fuse_batch_norm=True)
samples = [s.half().pin_memory() for s in x]
orig = [(1, 1)] * N
runners = {}
for concurrent in (True, False):
    net = Int8Head(copy.deepcopy(head), amax)
    net.concurrent = concurrent
    runners[concurrent] = TorchRunner(net, 4, "cuda", opts, batch_size=N, keep_on_device=True)
    runners[concurrent].lend(samples)  # compile, capture
for round_ in (1, 2):
    for concurrent, runner in runners.items():
        with torch.inference_mode():
            xd = runner.to_device(samples)
            head_ms = bench(lambda: runner.run_on_device(xd, lend=True), 20)
        det = Detector(runner, "resnext50_32x4d_fpn", 800, S)
        piped = pipelined_ms(lambda: det(samples, orig), 2, 20)
        print(f"round {round_}, chains concurrent {concurrent}: head {head_ms:.2f} ms, "
              f"pipelined {piped:.2f} ms a batch ({1e3 * N / piped:.0f} img/s)", flush=True)
a, b = (runners[c].lend(samples) for c in (True, False))
print("maps equal:", all(torch.equal(p, q) for p, q in zip(a, b, strict=True)))
