"""The system under test: LoadGen's issue_query per scenario.

SingleStream and MultiStream run each query inline in issue_query, one batch, no thread
hand-off: LoadGen issues the next query only after this one completes, so inline is the
lowest latency. Offline and Server queue the samples for `workers` threads, each taking up to
`batch_size` at a time: what has arrived, and, with `batch_wait` seconds, what arrives within
that time of the batch's first sample (Server: a head of a fixed batch costs as much for a
few samples as for a full batch; Offline's samples all arrive at once); with two workers, one
batch's post-processing runs while the next one is in the head.

The step a batch goes through is `accuracy_payloads` of a detector.Detector (the infer rule's,
with boxes normalised to the input) unless a test hands in another callable.

A failure must not hang LoadGen, which waits for every sample: the failing samples and all
later ones complete empty, and `error` holds the exception for the caller to raise.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..timers import StageTimers
from .accuracy import encode_detections
from .qsl import SampleLibrary
from .settings import check_scenario

if TYPE_CHECKING:
    from ..detector import Detector

_EMPTY = np.zeros(0, dtype=np.float32)
_STOP = object()


def accuracy_payloads(detector: Detector) -> Callable[[np.ndarray, list[int]], list[np.ndarray]]:
    """The SUT's step on a Detector: images + their sample indices -> one accuracy-log
    payload per sample. Every original size is (1, 1), so the post-processing's final scaling
    divides by the input size: boxes normalised to the model input, as MLPerf wants them."""

    def run(images: np.ndarray, indices: list[int]) -> list[np.ndarray]:
        detections = detector(images, [(1, 1)] * len(indices))
        return [
            encode_detections(index, d["boxes"], d["scores"], d["labels"])
            for index, d in zip(indices, detections, strict=True)
        ]

    return run


class DetectionSUT:
    def __init__(
        self,
        detector: Callable[[np.ndarray, list[int]], list[np.ndarray]],
        qsl: SampleLibrary,
        scenario: str,
        batch_size: int = 1,
        timers: StageTimers | None = None,
        *,
        workers: int,
        batch_wait: float = 0,
    ):
        import mlperf_loadgen as lg

        self._lg = lg
        self.detector = detector
        self.qsl = qsl
        self.scenario = check_scenario(scenario)
        self.batch_size = max(1, batch_size)
        self.timers = timers or StageTimers()
        self.inline = scenario in ("SingleStream", "MultiStream")
        self.completed = 0
        self.first_issue: float | None = None
        self.last_complete: float | None = None
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._worker_count = max(1, workers)
        self.batch_wait = max(0.0, batch_wait)
        self._lock = threading.Lock()

    def __enter__(self):
        if not self.inline and not self._workers:
            self.start_workers()
        return self

    def start_workers(self, warm_up: Callable[[], None] | None = None) -> None:
        """Start the worker threads (Offline, Server); with `warm_up`, each first runs it
        and this returns once all have: what a thread does once (a PyTorch runner captures
        a CUDA graph a thread) stays out of LoadGen's timing. A warm-up's failure stops the
        workers and is raised here."""
        if self.inline:
            return
        ready = threading.Barrier(self._worker_count + 1)

        def serve():
            if warm_up is not None:
                try:
                    warm_up()
                except BaseException as err:
                    self.error = self.error or err
                finally:
                    ready.wait()
            self._serve()

        self._workers = [
            threading.Thread(target=serve, name=f"sut-worker-{i}", daemon=True)
            for i in range(self._worker_count)
        ]
        for worker in self._workers:
            worker.start()
        if warm_up is not None:
            ready.wait()
            if self.error is not None:  # before any query: stop, and say why
                self.__exit__(None, None, None)
                raise self.error

    def __exit__(self, *exc):
        for _ in self._workers:
            self._queue.put(_STOP)
        for worker in self._workers:
            worker.join()
        self._workers = []

    def issue_queries(self, samples) -> None:
        if self.first_issue is None:
            self.first_issue = time.perf_counter()
        if self.inline:
            for start in range(0, len(samples), self.batch_size):
                self._run(samples[start : start + self.batch_size])
        else:
            for sample in samples:
                self._queue.put(sample)

    def flush_queries(self) -> None:
        """Nothing is held back: the worker always takes what has arrived."""

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.perf_counter() + self.batch_wait
            while len(batch) < self.batch_size:
                try:
                    left = deadline - time.perf_counter()
                    sample = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if sample is _STOP:
                    self._queue.put(_STOP)  # finish this batch, then stop
                    break
                batch.append(sample)
            self._run(batch)

    def _run(self, samples) -> None:
        indices = [s.index for s in samples]
        payloads = None
        if self.error is None:
            try:
                start = time.perf_counter()
                images = self.qsl.batch(indices)
                self.timers.add("batching", time.perf_counter() - start, len(indices))
                payloads = self.detector(images, indices)
            except BaseException as err:  # LoadGen must still get its responses
                self.error = err
        payloads = payloads or [_EMPTY] * len(samples)
        responses = [
            self._lg.QuerySampleResponse(s.id, p.ctypes.data, p.nbytes)
            for s, p in zip(samples, payloads, strict=True)
        ]
        self._lg.QuerySamplesComplete(responses)  # LoadGen copies the payloads here
        with self._lock:
            self.completed += len(samples)
            self.last_complete = time.perf_counter()
