"""Reading LoadGen's logs back: the verdict from mlperf_log_summary.txt ("Result is : VALID"),
the numbers from mlperf_log_detail.txt (":::MLLOG {json}" lines, one key each)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

SUMMARY = "mlperf_log_summary.txt"
DETAIL = "mlperf_log_detail.txt"
ACCURACY = "mlperf_log_accuracy.json"
_MLLOG = ":::MLLOG "
_PERCENTILES = {"p50": "50.00", "p90": "90.00", "p95": "95.00", "p97": "97.00", "p99": "99.00"}
# the scenario's throughput in samples per second, as LoadGen reports it
_QPS_KEYS = {
    "SingleStream": "result_qps_with_loadgen_overhead",
    "Server": "result_completed_samples_per_sec",
    "Offline": "result_samples_per_second",
}


def read_detail(path: str | os.PathLike) -> dict:
    """Every key of the detail log with its last value."""
    values = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith(_MLLOG):
            try:
                entry = json.loads(line[len(_MLLOG) :])
            except ValueError:
                continue  # LoadGen cuts very long messages; none of the keys read here
            values[entry.get("key")] = entry.get("value")
    return values


def read_verdict(path: str | os.PathLike) -> str | None:
    """VALID or INVALID from the summary; None when LoadGen wrote none (accuracy mode)."""
    match = re.search(r"^Result is\s*:\s*(\w+)", Path(path).read_text(), re.MULTILINE)
    return match.group(1) if match else None


def _ms(value) -> float | None:
    return None if value is None else round(value / 1e6, 4)


def loadgen_results(log_dir: str | os.PathLike, scenario: str) -> dict:
    """The verdict, throughput and latencies of one LoadGen run (None where not reported).

    Latencies are per query: one sample in SingleStream and Server, samples_per_query in
    MultiStream, the whole run in Offline.
    """
    log_dir = Path(log_dir)
    detail = read_detail(log_dir / DETAIL) if (log_dir / DETAIL).exists() else {}
    verdict = read_verdict(log_dir / SUMMARY) if (log_dir / SUMMARY).exists() else None
    latency = {"mean": _ms(detail.get("result_mean_latency_ns"))}
    for name, pct in _PERCENTILES.items():
        latency[name] = _ms(detail.get(f"result_{pct}_percentile_latency_ns"))
    latency["min"] = _ms(detail.get("result_min_latency_ns"))
    latency["max"] = _ms(detail.get("result_max_latency_ns"))
    qps_key = _QPS_KEYS.get(scenario)
    return {
        "result": verdict,
        "valid": verdict == "VALID" if verdict else None,
        "qps": detail.get(qps_key) if qps_key else None,
        "latency_ms": latency,
        "query_count": detail.get("result_query_count"),
        "min_duration_met": detail.get("result_min_duration_met"),
        "min_queries_met": detail.get("result_min_queries_met"),
        "perf_constraints_met": detail.get("result_perf_constraints_met"),
        "early_stopping": (detail.get("early_stopping_result") or "").strip() or None,
        "invalid_reason": (detail.get("result_invalid_reason") or "").strip() or None,
        "errors": detail.get("num_errors"),
        "loadgen_version": detail.get("loadgen_version"),
    }
