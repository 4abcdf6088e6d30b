"""Ninth lease, third call (lease9_c.py): where LoadGen's 1,040-1,085 samples/s go, outside
LoadGen (issue 13). The torch-int8 head as lend8.py builds it (batch 32, compiled, fused trunk,
CUDA graphs, random weights with the class bias at -1), fed a list of 32 pinned float16
samples as LoadGen's sample library hands them over, through the Detector (head, then the
post-processing on the GPU, detections to the host):
1. batches a second with 1, 2 and 3 threads calling the Detector, and the head alone
   (runner.lend) from one thread: what the GPU does with the heads and post-processings
   overlapped, against one after the other;
2. the post-processing alone of the head's real maps, wall time;
3. a profile of the 2-thread run: the GPU's busy time (the union of the kernels' intervals)
   against the wall, and the kernels' summed time per stream, per batch."""
import copy, threading, time, torch
from torch.profiler import profile, ProfilerActivity
from retinaflow.detector import Detector
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps
from retinaflow.model.int8_head import Int8Head, calibrate
from retinaflow.postprocess import PostprocessSettings
from retinaflow.runtime.torch_runner import TorchOptions, TorchRunner

S = PostprocessSettings(0.05, 1000, 0.5, 300)
N = 32
torch.manual_seed(0)
head = HeadMaps(build_retinanet("resnext50_32x4d_fpn", 264, 800)).eval()
with torch.no_grad():
    head.classification_head.cls_logits.bias.fill_(-1.0)
x = torch.rand(N, 3, 800, 800)
net = Int8Head(copy.deepcopy(head), calibrate(copy.deepcopy(head).cuda(), [x[:4].cuda()]))
opts = TorchOptions(dtype="float16", channels_last=True, compile="default", cuda_graphs=True, fuse_batch_norm=True)
runner = TorchRunner(net, 4, "cuda", opts, batch_size=N, keep_on_device=True)
samples = [s.half().pin_memory() for s in x]
orig = [(1, 1)] * N
det = Detector(runner, "resnext50_32x4d_fpn", 800, S)


def rate(threads, step, batches=20):
    """Batches a second, `threads` threads each running `step` `batches` times after two
    untimed calls (its graph's capture)."""
    ready = threading.Barrier(threads + 1)

    def work():
        step(); step()
        ready.wait(); ready.wait()
        for _ in range(batches):
            step()
        ready.wait()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool: t.start()
    ready.wait(); torch.cuda.synchronize(); start = time.perf_counter(); ready.wait()
    ready.wait(); torch.cuda.synchronize()
    wall = time.perf_counter() - start
    for t in pool: t.join()
    return threads * batches / wall


full = lambda: det(samples, orig)
head_only = lambda: runner.lend(samples)
print(f"head alone (runner.lend), 1 thread: {1e3 / rate(1, head_only):.2f} ms a batch", flush=True)
for threads in (1, 2, 3, 2, 1):
    r = rate(threads, full)
    print(f"Detector, {threads} thread(s): {1e3 / r:.2f} ms a batch, {N * r:.0f} img/s", flush=True)
maps = runner.lend(samples)
for _ in range(3): det.postprocess_maps(maps, orig)
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(20): det.postprocess_maps(maps, orig)
print(f"post-processing alone of the head's maps: {(time.perf_counter() - t) * 50:.2f} ms a batch wall", flush=True)

# 3. the 2-thread run under the profiler
ready = threading.Barrier(3)
K = 8
def work():
    full(); full(); ready.wait(); ready.wait()
    for _ in range(K): full()
    ready.wait()
pool = [threading.Thread(target=work) for _ in range(2)]
for t in pool: t.start()
ready.wait(); torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
    start = time.perf_counter(); ready.wait(); ready.wait(); torch.cuda.synchronize()
    wall = time.perf_counter() - start
for t in pool: t.join()
spans, by_stream = [], {}
for e in prof.profiler.kineto_results.events():
    if e.device_type() != torch.autograd.DeviceType.CUDA: continue
    s, d = e.start_ns(), e.duration_ns()
    if "Memcpy" in e.name() or "Memset" in e.name():
        key = "copies/memsets"
    else:
        key = f"stream {e.device_resource_id()}"
    by_stream[key] = by_stream.get(key, 0) + d
    if key != "copies/memsets": spans.append((s, s + d))
spans.sort(); busy = 0; cur_s, cur_e = spans[0]
for s, e in spans[1:]:
    if s > cur_e: busy += cur_e - cur_s; cur_s, cur_e = s, e
    else: cur_e = max(cur_e, e)
busy += cur_e - cur_s
first, last = spans[0][0], max(e for _, e in spans)
nb = 2 * K
print(f"profiled, 2 threads, {nb} batches: wall {wall * 1e3 / nb:.2f} ms a batch; kernel span {(last - first) / 1e6 / nb:.2f}; "
      f"GPU busy (union of kernels) {busy / 1e6 / nb:.2f} ms a batch ({100 * busy / (last - first):.1f}% of the span)")
for k, v in sorted(by_stream.items(), key=lambda kv: -kv[1]):
    print(f"  {k}: {v / 1e6 / nb:.2f} ms of kernels a batch")
