"""Tenth lease, third call (lease10_c.sh runs it, after the perf rule has built
models/rand800/torch-int8.pt and the demo's images): where LoadGen's ~1,040 samples/s lose to
the Detector's own ~1,220 img/s (issue 13). lease10_next.sh ruled out the random weights'
ties (spread weights: no faster). One process, one runner (the perf rule's: open_runner on the
DAG's torch-int8 build, config/gpu.yaml's torch settings), 2 threads each, alternating, twice:
  random   the Detector on 32 pinned float16 U(0,1) samples, the same each batch (the gpu
           benchmark's `pipelined`, lease9_c.py);
  demo1    the Detector on the demo's first 32 samples as the sample library keeps them;
  demo     the Detector on the 64 samples of LoadGen's performance set, batches cycling;
  step     the SUT's step (accuracy_payloads: + encode_detections) on the same;
  sut      DetectionSUT's own workers and queue, 4,096 samples queued at once as Offline does,
           its LoadGen calls answered by two Python functions (no LoadGen);
  loadgen  run_loadgen in this process (LoadGen Offline, 20 s; its own runner).
Each line gives the wall ms a batch and img/s, and the Detector's stage timers a batch.
`--rounds=N` (2); `--split`: the head alone and the post-processing alone, on the random and
on the demo's input (`--clone`: of copies of the maps, as the tenth lease ran it); `--profile`:
the post-processing alone under torch.profiler, its kernels by name; `--tiled`: the NMS's
whole-list pass in torch against the tiled Triton kernel (TILED_WIDE_LISTS); `--config=FILE` one more config file (the spread weights' model);
`--no-loadgen`. `--local`: the same on this CPU with the demo model's `torch` variant (a check of the script,
after `snakemake --cores 2 models/demo/weights.pt data/demo/annotations.json --configfile
config/demo.yaml`)."""

import itertools
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import torch
import yaml

from retinaflow.benchmarks.gpu import pipelined_ms
from retinaflow.data.annotations import load_annotations
from retinaflow.detector import Detector
from retinaflow.perf import run_loadgen
from retinaflow.perf.qsl import SampleLibrary, sample_records
from retinaflow.perf.sut import DetectionSUT, accuracy_payloads
from retinaflow.postprocess import PostprocessSettings
from retinaflow.runtime import open_runner
from retinaflow.timers import StageTimers

FILES = ["config/config.yaml", "config/demo.yaml", "config/gpu.yaml",
         "benchmarks/records/gpu-h200/mlperf-random-800.yaml", "/tmp/perf.yaml"]
FILES += [a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")]  # e.g. spread800


def merged(files):
    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a
    out = {}
    for f in files:
        merge(out, yaml.safe_load(Path(f).read_text()) or {})
    return out


LOCAL = "--local" in sys.argv
if LOCAL:
    FILES = FILES[:2]
VARIANT, DEVICE = ("torch", "cpu") if LOCAL else ("torch-int8", "cuda")
cfg = merged(FILES)
if LOCAL:
    cfg["perf"].update(batch_size=4, threads=2, performance_sample_count=8)
m = cfg["model"]
model = {"arch": m["arch"], "num_classes": m["num_classes"], "image_size": m["image_size"]}
RUNTIME = f"models/{m['name']}/" + ("weights.pt" if LOCAL else "torch-int8.pt")
N, THREADS, ITERS = cfg["perf"]["batch_size"], cfg["perf"]["threads"], 4 if LOCAL else 40
ann, images = "data/demo/annotations.json", "data/demo/images"
post = PostprocessSettings(**cfg["postprocess"])
records = sample_records(load_annotations(ann), images)
runner = open_runner(VARIANT, RUNTIME, model, THREADS, DEVICE, N, torch_settings=cfg["pytorch"])
timers = StageTimers()
qsl = SampleLibrary(records, m["image_size"], cfg["preprocess"]["resize_kernel"], THREADS,
                    timers, DEVICE == "cuda", dtype=runner.dtype if DEVICE == "cuda" else None)
PERF = min(cfg["perf"]["performance_sample_count"], len(records))
qsl.load(list(range(PERF)))
det = Detector(runner, m["arch"], m["image_size"], post, timers)
step = accuracy_payloads(det)
orig = [(1, 1)] * N
S = m["image_size"]
rand = [torch.rand(3, S, S).to(runner.dtype or torch.float32) for _ in range(N)]
rand = [r.pin_memory() for r in rand] if DEVICE == "cuda" else torch.stack(rand).numpy()
first = list(range(N))
cycle = itertools.cycle([list(range(s, s + N)) for s in range(0, PERF - N + 1, N)])
lock = threading.Lock()


def next_indices():
    with lock:
        return next(cycle)


def demo_cycling():
    idx = next_indices()
    det(qsl.batch(idx), orig)


def step_cycling():
    idx = next_indices()
    step(qsl.batch(idx), idx)


def sut_run(samples=4096):
    """DetectionSUT's workers on `samples` queued at once; LoadGen's two calls answered here."""
    done = threading.Event()
    count = [0]

    def complete(responses):
        with lock:
            count[0] += len(responses)
            if count[0] >= samples:
                done.set()

    fake = types.SimpleNamespace(QuerySampleResponse=lambda i, p, n: i, QuerySamplesComplete=complete)
    sut = DetectionSUT(step, qsl, "Offline", N, timers, workers=2)
    sut._lg = fake
    sut.start_workers(lambda: det(qsl.batch(first), orig))
    Sample = types.SimpleNamespace
    queued = [Sample(id=i, index=i % PERF) for i in range(samples)]
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    sut.issue_queries(queued)
    done.wait()
    wall = time.perf_counter() - start
    sut.__exit__(None, None, None)
    return 1e3 * wall / (samples / N)


def measure(name, fn):
    timers.reset()
    ms = fn()
    stages = {k: round(v * N, 2) for k, v in timers.ms_per_image().items() if k in ("inference", "postprocess")}
    print(f"{name:8s} {ms:6.2f} ms a batch, {1e3 * N / ms:6.0f} img/s; stages ms a batch (a thread's wall): {stages}", flush=True)


def loadgen():
    rec = run_loadgen(
        variant=VARIANT, runtime_path=RUNTIME, annotations=ann, image_dir=images,
        model=model, scenario="Offline", mode="PerformanceOnly",
        settings=cfg["perf"]["scenarios"]["Offline"], out_json=None, log_dir="/tmp/lg10c",
        threads=THREADS, batch_size=N, performance_sample_count=cfg["perf"]["performance_sample_count"],
        resize_kernel=cfg["preprocess"]["resize_kernel"], postprocess=cfg["postprocess"],
        device=DEVICE, torch_settings=cfg["pytorch"], workers=cfg["perf"]["workers"],
        batch_wait_ms=cfg["perf"].get("batch_wait_ms", 0),
    )
    st = {k: round(v * N, 2) for k, v in rec["stages_ms"].items() if k in ("inference", "postprocess")}
    print(f"loadgen  {1e3 * N / rec['qps']:6.2f} ms a batch, {rec['qps']:6.0f} img/s "
          f"({rec['result']}); stages ms a batch: {st}", flush=True)


def split():
    """The head alone (runner.lend, CUDA events) and the post-processing alone of its maps
    (wall, it syncs), on the random and on the demo's first batch, alternating."""
    sys.path.insert(0, str(Path(__file__).parent))
    from grouped_conv_bench import bench  # the records' CUDA-event timer

    demo = qsl.batch(first)
    with torch.inference_mode():
        for round_ in (1, 2):
            for name, x in (("random", rand), ("demo1", demo)):
                head = bench(lambda: runner.lend(x), 30)
                if "--clone" in sys.argv:  # as run in the tenth lease: contiguous copies
                    maps = [m.clone() for m in runner.lend(x)]
                else:  # the lent maps (the padded grids read in place), as the Detector reads
                    maps = runner.lend(x)  # them; valid until this thread's next lend
                post = bench(lambda: det.postprocess_maps(maps, orig), 30)
                print(f"split {round_} {name:7s} head alone {head:6.2f} ms, post alone {post:6.2f} ms a batch", flush=True)


def profile_post(iters=10):
    """The post-processing alone of the lent maps under torch.profiler, random against the
    demo's first batch: the kernels' device time a batch by name (the 15 largest), the
    host's syncs and copies a batch, and the wall."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE == "cuda" else [])
    demo = qsl.batch(first)
    with torch.inference_mode():
        for name, x in (("random", rand), ("demo1", demo), ("random", rand), ("demo1", demo)):
            maps = runner.lend(x) if hasattr(runner, "lend") else runner(x)
            for _ in range(3):
                det.postprocess_maps(maps, orig)
            if DEVICE == "cuda":
                torch.cuda.synchronize()
            with profile(activities=activities) as prof:
                start = time.perf_counter()
                for _ in range(iters):
                    det.postprocess_maps(maps, orig)
                wall = (time.perf_counter() - start) * 1e3 / iters
            events = prof.key_averages()
            device = sorted(events, key=lambda e: -e.self_device_time_total)[:15]
            total = sum(e.self_device_time_total for e in events) / 1e3 / iters
            host = {e.key: e.count / iters for e in events
                    if any(w in e.key for w in ("Synchronize", "Memcpy", "LaunchKernel", "item", "tolist"))}
            print(f"profile {name}: wall {wall:.2f} ms a batch, kernels {total:.2f} ms; host calls a batch {host}", flush=True)
            for e in device:
                if e.self_device_time_total:
                    print(f"  {e.self_device_time_total / 1e3 / iters:7.3f} ms  x{e.count / iters:5.1f}  {e.key[:110]}", flush=True)


def tiled():
    """The NMS's whole-list pass (an image whose best 1,000 candidates keep fewer than 300)
    in the torch fixed point against triton_nms's tiled kernel (batched_nms.TILED_WIDE_LISTS):
    on the demo's two batches of 32, how many images take it, whether the detections are
    equal, and the post-processing alone of the lent maps with each, alternating."""
    sys.path.insert(0, str(Path(__file__).parent))
    from grouped_conv_bench import bench

    from retinaflow import batched_nms, device_postprocess

    widths = []
    first_kept = device_postprocess._first_kept

    def spy(shifted, scores, valid, images, width, settings):
        widths.append((len(images), width))
        return first_kept(shifted, scores, valid, images, width, settings)

    device_postprocess._first_kept = spy
    with torch.inference_mode():
        for batch in (first, list(range(N, 2 * N))):
            x = qsl.batch(batch)
            maps = runner.lend(x) if hasattr(runner, "lend") else runner(x)
            found = {}
            for flag in (False, True):
                batched_nms.TILED_WIDE_LISTS = flag
                widths.clear()
                found[flag] = det.postprocess_maps(maps, orig)
            equal = all(
                np.array_equal(a[key], b[key])
                for a, b in zip(found[False], found[True], strict=True)
                for key in ("boxes", "scores", "labels")
            )
            print(f"tiled: samples {batch[0]}-{batch[-1]}: NMS calls (images, width) {widths}, detections equal {equal}", flush=True)
            for round_ in (1, 2):
                for flag in (False, True):
                    batched_nms.TILED_WIDE_LISTS = flag
                    post = bench(lambda: det.postprocess_maps(maps, orig), 20)
                    print(f"tiled {round_}: TILED_WIDE_LISTS {flag}: post alone {post:6.2f} ms a batch", flush=True)
    batched_nms.TILED_WIDE_LISTS = False


if "--tiled" in sys.argv:
    tiled()
    sys.exit()
if "--split" in sys.argv:
    split()
    sys.exit()
if "--profile" in sys.argv:
    profile_post()
    sys.exit()
print(f"{len(records)} demo samples, {PERF} in memory ({qsl.describe()}), batch {N}, {ITERS} batches a thread", flush=True)
with torch.inference_mode():
    det(rand, orig)
ROUNDS = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--rounds=")), 2)
for round_ in range(1, ROUNDS + 1):
    with torch.inference_mode():
        measure("random", lambda: pipelined_ms(lambda: det(rand, orig), 2, ITERS))
        measure("demo1", lambda: pipelined_ms(lambda: det(qsl.batch(first), orig), 2, ITERS))
        measure("demo", lambda: pipelined_ms(demo_cycling, 2, ITERS))
        measure("step", lambda: pipelined_ms(step_cycling, 2, ITERS))
        measure("sut", sut_run)
    if "--no-loadgen" not in sys.argv:
        loadgen()
