"""LoadGen test settings: MLPerf's own RetinaNet values first (the mlperf.conf built into
LoadGen: seeds, percentiles, performance sample count, MLPerf's durations), then the config's
scenario block on top, so a short demo run differs from an official one only where it says so.
"""

from __future__ import annotations

from ..errors import SettingError

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MODES = ("PerformanceOnly", "AccuracyOnly")
MLPERF_MODEL = "retinanet"  # the model's name in mlperf.conf
_BUILT_IN_CONF = 0  # FromConfig's conf_type: LoadGen's embedded mlperf.conf only, no user.conf

# setting -> (TestSettings attribute, factor from the config's unit to LoadGen's)
_COMMON = {
    "min_duration_ms": ("min_duration_ms", 1),
    "max_duration_ms": ("max_duration_ms", 1),
    "min_query_count": ("min_query_count", 1),
    "max_query_count": ("max_query_count", 1),
}
SCENARIO_KEYS = {
    # SingleStream/MultiStream: the expected latency sizes the pre-generated query list
    "SingleStream": {"target_latency_ms": ("single_stream_expected_latency_ns", 1_000_000)},
    "MultiStream": {
        "target_latency_ms": ("multi_stream_expected_latency_ns", 1_000_000),
        "samples_per_query": ("multi_stream_samples_per_query", 1),
    },
    "Server": {
        "target_latency_ms": ("server_target_latency_ns", 1_000_000),
        "target_qps": ("server_target_qps", 1.0),
    },
    "Offline": {"target_qps": ("offline_expected_qps", 1.0)},
}


def check_scenario(scenario: str) -> str:
    if scenario not in SCENARIOS:
        raise ValueError(f"LoadGen scenario must be one of {SCENARIOS}, got {scenario!r}")
    return scenario


def loadgen_settings(
    scenario: str, mode: str, settings: dict | None, performance_sample_count: int | None = None
):
    """A mlperf_loadgen.TestSettings for `scenario` and `mode` (PerformanceOnly|AccuracyOnly).

    `settings` is the config's block for the scenario (the setting named `scenario`): keys of
    _COMMON and SCENARIO_KEYS[scenario]; a None value keeps MLPerf's.
    """
    import mlperf_loadgen as lg

    check_scenario(scenario)
    if mode not in MODES:
        raise ValueError(f"LoadGen mode must be one of {MODES}, got {mode!r}")
    known = {**_COMMON, **SCENARIO_KEYS[scenario]}
    unknown = sorted(set(settings or {}) - set(known))
    if unknown:
        raise SettingError(scenario, unknown, f"unknown settings; {scenario} takes {sorted(known)}")
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, scenario)
    ts.FromConfig("", MLPERF_MODEL, scenario, _BUILT_IN_CONF)
    ts.mode = getattr(lg.TestMode, mode)
    for key, value in (settings or {}).items():
        if value is None:
            continue
        attribute, factor = known[key]
        if isinstance(factor, float):
            setattr(ts, attribute, float(value) * factor)
        else:
            setattr(ts, attribute, int(round(value * factor)))
    if performance_sample_count:
        ts.performance_sample_count_override = int(performance_sample_count)
    return ts


def describe(ts) -> dict:
    """The settings that decide a run, as plain JSON for the perf record."""
    names = (
        "min_duration_ms", "max_duration_ms", "min_query_count", "max_query_count",
        "performance_sample_count_override", "single_stream_expected_latency_ns",
        "multi_stream_expected_latency_ns", "multi_stream_samples_per_query",
        "server_target_latency_ns", "server_target_qps", "offline_expected_qps",
    )  # fmt: skip
    return {name: getattr(ts, name) for name in names}
