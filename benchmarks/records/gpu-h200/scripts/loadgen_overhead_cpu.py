"""After the ninth lease, on the CPU (gpu-h200.md, "After the lease"): LoadGen's and the SUT's
own host cost a batch. Offline, batch 32, 2 workers, through perf/run.py's _start_test and
perf/sut.py's DetectionSUT, with a step that sleeps `gpu_ms` (the GIL released, as a wait for
the GPU) and returns 300 detections an image (encode_detections): the achieved rate against
the sleep's bound, 2 x 32 / gpu_ms. From the repository root:

    for g in 26 10 2; do .venv/bin/python benchmarks/records/gpu-h200/scripts/loadgen_overhead_cpu.py $g; done
"""
import sys, tempfile, time
from pathlib import Path
import numpy as np
from retinaflow.perf.accuracy import encode_detections
from retinaflow.perf.run import _start_test
from retinaflow.perf.settings import loadgen_settings
from retinaflow.perf.sut import DetectionSUT

gpu_ms = float(sys.argv[1])


class Samples:  # a sample library with nothing to load: the indices are the batch
    def __len__(self): return 64
    def load(self, indices): pass
    def unload(self, indices): pass
    def batch(self, indices): return indices


rng = np.random.default_rng(0)
boxes, scores, labels = rng.random((300, 4), dtype=np.float32), rng.random(300, dtype=np.float32), np.arange(300)


def step(images, indices):
    time.sleep(gpu_ms / 1e3)
    return [encode_detections(i, boxes, scores, labels) for i in indices]


bound = 2 * 32e3 / gpu_ms
settings = loadgen_settings("Offline", "PerformanceOnly", {"min_duration_ms": 5000, "min_query_count": 1024, "target_qps": bound}, 64)
sut = DetectionSUT(step, Samples(), "Offline", 32, workers=2)
with tempfile.TemporaryDirectory() as logs:
    _start_test(sut, Samples(), settings, Path(logs), 64)
    summary = (Path(logs) / "mlperf_log_summary.txt").read_text()
rate = next(line for line in summary.splitlines() if "Samples per second" in line).strip()
print(f"sleep {gpu_ms} ms a batch: bound {bound:.0f}/s; {rate}")
