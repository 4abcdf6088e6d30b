"""MetaSchedule tuning: one database folder per (model, precision), shared by every build of
that precision (int8, int8-max, int8-kl and int8-percentile tune once).

Tasks come from the same fused module compile.compile_head builds (compile.prepare_head), so
the database's workloads are the ones compile looks up. Workloads are keyed by their anchor
block (compile.module_equality; structurally on a VNNI target, see there): the QDQ models of
two calibration methods differ only in the scales and zero points that TVM folds into the TIR
as literals (mostly in the epilogue after each convolution), so under structural equality an
int8-kl build would find few of the int8-max database's convolutions; under anchor-block
equality it finds all of them (demo head at 64x64, 1 trial a task: the kl build has 51 of 58
functions scheduled, the rest small pads and element-wise ops, and its maps equal its untuned
build's).

`import tvm.s_tir.tensor_intrin` costs 40-60 s of CPU on this 2-core machine, nearly all of it
parsing the CUDA intrinsics. TVM does it in every TuneContext (once per process) and in every
build worker (past the stock builder's 30 s timeout: lost candidates). For CPU targets we
register only the CPU intrinsics (~0.3 s for x86) and build candidates without the import.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
import types
from pathlib import Path

from .compile import TUNING_META, module_equality, prepare_head, resolve_target, target_json
from .io import atomic_path, write_json
from .vnni import register_intrinsic, space_generator, target_has_vnni

DATABASE_FILES = ("database_workload.json", "database_tuning_record.json")


CPU_INTRINSIC_MODULES = ("x86", "arm_cpu", "riscv_cpu", "hexagon")


def _register_intrinsics(target) -> None:
    """Make `import tvm.s_tir.tensor_intrin` cheap for a CPU target: stand in an empty package
    and import only its CPU submodules (the VNNI / NEON rules look their intrinsics up)."""
    package = "tvm.s_tir.tensor_intrin"
    if package in sys.modules:
        return
    if target.kind.name != "llvm":
        importlib.import_module(package)
        return
    spec = importlib.util.find_spec(package)
    stub = types.ModuleType(package)
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__spec__ = spec
    stub.__package__ = package
    sys.modules[package] = stub
    for name in CPU_INTRINSIC_MODULES:
        importlib.import_module(f"{package}.{name}")


def _build_candidate(mod, target, _params):
    """LocalBuilder's f_build without the tensor-intrinsic import; on a VNNI CPU it registers
    the one intrinsic the candidates may use (vnni.register_intrinsic: this runs in a worker
    process, which has not seen the tuner's registration)."""
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    if target_has_vnni(target):
        register_intrinsic()

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def tune_head(
    onnx_path: str | os.PathLike,
    work_dir: str | os.PathLike,
    target=None,
    trials: int = 0,
    input_shape: list[int] = (1, 3, 800, 800),
    precision: str = "fp32",
    fp16_accumulate: str = "float32",
    trials_per_iter: int = 16,
    seed: int = 0,
    builder_timeout_s: float = 60.0,
    trials_per_task: int | None = None,
) -> dict:
    """Tune with `trials` candidates in all (0: an empty, valid database) into `work_dir`;
    with `trials_per_task`, the budget is that many per extracted task instead
    (config key compile.tuning.trials_per_task).

    The folder is written under a temporary name and renamed when complete. Returns the
    tuning meta, also written to `work_dir`/tuning.json.
    """
    from tvm.s_tir import meta_schedule as ms

    if trials_per_task is not None:
        _check_count("compile.tuning.trials_per_task", trials_per_task)
        trials = 0
    else:
        _check_count("compile.tuning.trials", trials)
    started = time.perf_counter()
    target = resolve_target(target)
    input_shape = [int(d) for d in input_shape]
    with atomic_path(work_dir) as tmp:
        tmp.mkdir()
        tasks_tuned = 0
        if trials > 0 or trials_per_task:
            mod, _ = prepare_head(onnx_path, input_shape, precision, target, fp16_accumulate)
            tasks_tuned, trials = tune_module(
                mod, target, tmp, trials, trials_per_iter, seed, builder_timeout_s, trials_per_task
            )
        else:  # creates the two empty tables
            ms.database.JSONDatabase(work_dir=str(tmp), module_equality=module_equality(target))
        meta = {
            "source_onnx": str(onnx_path),
            "input_shape": input_shape,
            "precision": precision,
            "target": target_json(target),
            "fp16_accumulate": fp16_accumulate if precision == "fp16" else None,
            "trials": trials,
            "trials_per_task": trials_per_task,
            "tasks": tasks_tuned,
            "module_equality": module_equality(target),
            "records": _count_lines(Path(tmp) / DATABASE_FILES[1]),
            "seed": seed,
            "tuning_seconds": round(time.perf_counter() - started, 2),
        }
        write_json(Path(tmp) / TUNING_META, meta)
    return meta


def _check_count(key: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"config key {key} must be an integer >= 0, got {value!r}")


def tune_module(
    mod,
    target,
    work_dir: str | os.PathLike,
    trials: int,
    trials_per_iter: int = 16,
    seed: int = 0,
    builder_timeout_s: float = 60.0,
    trials_per_task: int | None = None,
) -> tuple[int, int]:
    """MetaSchedule over the tasks of a fused module (compile.lower_to_fused_tir) into
    `work_dir`'s database, workloads keyed by compile.module_equality; `trials` in all, or
    `trials_per_task` times the number of tasks. Returns (tasks, trials). On a VNNI CPU the
    space includes the VNNI tensorization (vnni.space_generator)."""
    from tvm.s_tir import meta_schedule as ms

    _register_intrinsics(target)
    _forget_unnamed_log_handlers()
    equality = module_equality(target)
    extracted = ms.relax_integration.extract_tasks(mod, target, module_equality=equality)
    contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
        extracted, work_dir=str(work_dir), space=space_generator(target), seed=seed
    )
    if trials_per_task:
        trials = trials_per_task * len(contexts)
    ms.tune_tasks(
        tasks=contexts,
        task_weights=weights,
        work_dir=str(work_dir),
        max_trials_global=trials,
        # per task: each task's first round stays within its share
        num_trials_per_iter=min(trials_per_iter, trials_per_task or trials),
        builder=ms.builder.LocalBuilder(f_build=_build_candidate, timeout_sec=builder_timeout_s),
        runner=ms.runner.LocalRunner(timeout_sec=builder_timeout_s),
        database=ms.database.JSONDatabase(work_dir=str(work_dir), module_equality=equality),
        module_equality=equality,
    )
    return len(contexts), trials


def _forget_unnamed_log_handlers() -> None:
    """MetaSchedule's logger setup lists the names of its logger's handlers in a dictConfig;
    a second tuning in one process (tests) found an unnamed one there and failed on
    `None.format`. Unnamed handlers cannot be named in a dictConfig: drop them."""
    import logging

    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    for handler in [h for h in logger.handlers if h.get_name() is None]:
        logger.removeHandler(handler)


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.strip())
