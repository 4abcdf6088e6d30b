"""One LoadGen test of one build: open the variant's runner, warm it up, run the scenario in
PerformanceOnly or AccuracyOnly mode, keep LoadGen's logs and write the perf record."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ..data.annotations import load_annotations
from ..detector import Detector
from ..io import atomic_path, read_json, write_json
from ..postprocess import PostprocessSettings
from ..runtime import backend, is_cuda, open_runner, runner_settings
from ..timers import StageTimers
from .logs import loadgen_results
from .qsl import SampleLibrary, sample_records
from .settings import MLPERF_MODEL, describe, loadgen_settings
from .sut import DetectionSUT, accuracy_payloads

log = logging.getLogger("retinaflow")


def build_batch(runtime_path: str | os.PathLike) -> int | None:
    """The batch a TVM build was compiled for (input_shape in the meta.json the compile rule
    writes beside it); None for runtimes that take any batch."""
    path = Path(runtime_path)
    if path.suffix != ".so":
        return None
    meta = path.with_name("meta.json")
    if not meta.is_file():
        raise FileNotFoundError(
            f"TVM build {path} has no meta.json beside it to say its compiled batch: "
            "rerun the compile rule"
        )
    return int(read_json(meta)["input_shape"][0])


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """PyTorch's pool size for the post-processing during the test, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _warm_up(
    detector: Detector, qsl: SampleLibrary, sut: DetectionSUT, batch_sizes: set[int]
) -> None:
    """One untimed run per batch size the test will use, on each thread that will run
    batches: this one (SingleStream, MultiStream: LoadGen issues their queries on the thread
    that starts the test) or the SUT's workers (started here): first-call allocations,
    kernel selection and each thread's CUDA graph stay out of LoadGen's latencies (MLPerf
    allows warm-up before the test)."""

    def run():
        for n in sorted(batch_sizes):
            detector(qsl.batch([0] * n), [(1, 1)] * n)

    qsl.load([0])
    try:
        if sut.inline:
            run()
        else:
            sut.start_workers(run)
    finally:
        qsl.unload([0])


def _start_test(sut: DetectionSUT, qsl: SampleLibrary, settings, log_dir: Path, perf_count: int):
    import mlperf_loadgen as lg

    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)  # LoadGen aborts if it does not exist
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    sut_handle = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    qsl_handle = lg.ConstructQSL(len(qsl), perf_count, qsl.load, qsl.unload)
    try:
        with sut:
            lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings)
    finally:
        lg.DestroyQSL(qsl_handle)
        lg.DestroySUT(sut_handle)


def run_loadgen(
    variant: str,
    runtime_path: str | os.PathLike,
    annotations: str | os.PathLike,
    image_dir: str | os.PathLike,
    model: dict,
    scenario: str,
    mode: str,
    settings: dict | None,
    out_json: str | os.PathLike | None,
    log_dir: str | os.PathLike,
    threads: int,
    batch_size: int,
    performance_sample_count: int,
    resize_kernel: str,
    postprocess: dict,
    device: str,
    torch_settings: dict | None,
    workers: int,
    postprocess_threads: int | None = None,
    batch_wait_ms: float = 0,
) -> dict:
    """Run one LoadGen test; LoadGen's logs go to `log_dir` (replaced atomically when the test
    ends), the record to `out_json` (if given). Returns the record.

    SingleStream always runs batch 1 (its queries hold one sample); the other scenarios batch
    up to `batch_size`; a TVM build runs the batch it was compiled for. `threads` go to the
    runtime and to the parallel preprocessing. `torch_settings`: the PyTorch runner's settings
    (a PyTorch variant's dtype is its name's; a compiled or CUDA-graphed head runs the test's
    batch, a shorter one padded to it).
    `workers`: Offline's and Server's threads taking batches, `batch_wait_ms` how long one
    waits for a short batch to fill (sut.DetectionSUT).
    `postprocess_threads` (PyTorch's pool for the host post-processing) defaults to 1 beside
    another runtime: its idle OpenMP threads spin on the cores the runtime's threads need
    (measured on the demo, 2 cores, batch 1: inference 24 -> 17 ms, post-processing 7.5 ->
    3.4 ms), and to `threads` when PyTorch is the runtime.
    """
    records = sample_records(load_annotations(annotations), image_dir)
    perf_count = min(performance_sample_count, len(records))
    test = loadgen_settings(scenario, mode, settings, perf_count)
    compiled = build_batch(runtime_path)
    batch = 1 if scenario == "SingleStream" else batch_size
    if scenario == "MultiStream":
        batch = min(batch, test.multi_stream_samples_per_query)
    if compiled:  # the runner pads a smaller batch to its compiled one, refuses a larger
        batch = compiled
    runner = open_runner(
        variant, runtime_path, model, threads, device, compiled or batch,
        torch_settings=torch_settings,
    )  # fmt: skip
    timers = StageTimers()
    # a PyTorch head on CUDA copies pinned samples, kept in its input dtype, straight into
    # its device batch
    pinned = backend(variant) == "pytorch" and is_cuda(runner.device)
    qsl = SampleLibrary(
        records, model["image_size"], resize_kernel, threads, timers, pinned,
        dtype=runner.dtype if pinned else None,
    )  # fmt: skip
    detector = Detector(
        runner, model["arch"], model["image_size"], PostprocessSettings(**postprocess), timers
    )
    sut = DetectionSUT(
        accuracy_payloads(detector), qsl, scenario, batch, timers, workers=workers,
        batch_wait=batch_wait_ms / 1000,
    )  # fmt: skip
    log.info(
        "LoadGen %s %s: %s, %d samples (%d for performance), batch %d, %d threads",
        scenario, mode, variant, len(records), perf_count, batch, threads,
    )  # fmt: skip
    start = time.perf_counter()
    post_threads = postprocess_threads or (threads if backend(variant) == "pytorch" else 1)
    with atomic_path(log_dir) as tmp, _torch_threads(post_threads):
        _warm_up(detector, qsl, sut, {batch} if scenario != "Server" else {1, batch})
        timers.reset()
        tmp.mkdir(parents=True)
        _start_test(sut, qsl, test, tmp, perf_count)
        if qsl.error is not None:
            raise qsl.error
        if sut.error is not None:
            raise RuntimeError(
                f"the {variant} build failed during the LoadGen {scenario} test "
                f"({runtime_path}): {sut.error}"
            ) from sut.error
        results = loadgen_results(tmp, scenario)
    elapsed = time.perf_counter() - start
    busy = (sut.last_complete or 0) - (sut.first_issue or 0)
    own_qps = round(sut.completed / busy, 3) if busy > 0 else None
    record = {
        "variant": variant,
        "scenario": scenario,
        "mode": mode,
        "result": results.pop("result"),
        "valid": results.pop("valid"),
        "samples": sut.completed,
        "qps": results.pop("qps") or own_qps,
        "qps_sut": own_qps,
        "latency_ms": results.pop("latency_ms"),
        "stages_ms": timers.ms_per_image(),
        "stages": timers.report(),
        "threads": threads,
        "workers": workers if scenario in ("Offline", "Server") else 1,
        "batch_wait_ms": batch_wait_ms if scenario in ("Offline", "Server") else 0,
        "batch_size": batch,
        "device": runner.device,
        "device_name": runner_settings(runner)["device_name"],
        "runner": runner_settings(runner),
        "dataset_samples": len(records),
        "performance_sample_count": perf_count,
        "samples_in_memory": qsl.describe(),
        "settings": describe(test),
        "mlperf_model": MLPERF_MODEL,
        "loadgen": results,
        "seconds": round(elapsed, 3),
        "runtime": str(runtime_path),
        "log_dir": str(log_dir),
    }
    if out_json is not None:
        write_json(out_json, record)
    return record
