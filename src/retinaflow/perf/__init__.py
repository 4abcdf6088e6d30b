"""MLPerf LoadGen for any build: a query sample library over preprocessed images, a system
under test that runs the build plus the host post-processing, the scenarios' settings, the
LoadGen logs read back, and the accuracy log scored with MLPerf's semantics.

    run_loadgen(...)          -> results/perf_{variant}_{scenario}.json (+ LoadGen's logs)
    score_accuracy_log(...)   -> the COCO mAP of an mlperf_log_accuracy.json

Imports are lazy: scoring an accuracy log needs neither LoadGen nor PyTorch (the score env).
"""

__all__ = ["run_loadgen", "score_accuracy_log"]


def __getattr__(name: str):
    if name == "run_loadgen":
        from .run import run_loadgen

        return run_loadgen
    if name == "score_accuracy_log":
        from .accuracy import score_accuracy_log

        return score_accuracy_log
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
