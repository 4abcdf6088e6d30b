"""Per-stage timers shared by the Detector (inference, postprocess) and LoadGen's sample
library and system under test (preprocess, batching): wall seconds and images per stage,
added from any thread, reported as milliseconds per image."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimers:
    def __init__(self):
        self._lock = threading.Lock()
        self._totals: dict[str, list[float]] = {}  # stage -> [seconds, images, calls]

    def add(self, stage: str, seconds: float, images: int) -> None:
        with self._lock:
            total = self._totals.setdefault(stage, [0.0, 0, 0])
            total[0] += seconds
            total[1] += images
            total[2] += 1

    @contextmanager
    def time(self, stage: str, images: int) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.add(stage, time.perf_counter() - start, images)

    def reset(self, *stages: str) -> None:
        with self._lock:
            for stage in stages or list(self._totals):
                self._totals.pop(stage, None)

    def snapshot(self) -> dict[str, tuple[float, int]]:
        """Each stage's seconds and images so far (for ms_per_image(since=...))."""
        with self._lock:
            return {
                stage: (seconds, images) for stage, (seconds, images, _) in self._totals.items()
            }

    def ms_per_image(self, since: dict[str, tuple[float, int]] | None = None) -> dict[str, float]:
        """Per stage, ms per image; `since` a snapshot(): only what was added after it (the
        steady state after a first batch that carried compiling and autotuning)."""
        since = since or {}
        with self._lock:
            rates = {}
            for stage, (seconds, images, _) in self._totals.items():
                before_s, before_n = since.get(stage, (0.0, 0))
                if images - before_n:
                    rates[stage] = round(1e3 * (seconds - before_s) / (images - before_n), 3)
            return rates

    def report(self) -> dict[str, dict]:
        """Per stage: ms per image, ms per call (a batch), images and calls."""
        with self._lock:
            return {
                stage: {
                    "ms_per_image": round(1e3 * seconds / images, 3) if images else None,
                    "ms_per_call": round(1e3 * seconds / calls, 3) if calls else None,
                    "images": images,
                    "calls": calls,
                }
                for stage, (seconds, images, calls) in self._totals.items()
            }
