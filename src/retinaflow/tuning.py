"""MetaSchedule tuning: one database folder per (model, precision), shared by every build of
that precision (int8, int8-max, int8-kl and int8-percentile tune once).

Tasks come from the same fused module compile.compile_head builds (compile.prepare_head), so
the database's workloads are the ones compile looks up. Only the functions that hold a
convolution are tuned by default (the FLOPs); the element-wise rest gets
cpu_schedule's default at compile. Workloads are keyed by their anchor block on a target
without VNNI and structurally on a VNNI one (compile.module_equality says why); either way
the builds of every calibration method find every convolution of the database. A database
shipped with the package (shipped_tuning) can be the start.

`import tvm.s_tir.tensor_intrin` costs 40-60 s of CPU on this 2-core machine, nearly all of it
parsing the CUDA intrinsics. TVM does it in every TuneContext (once per process) and in every
build worker (past the stock builder's 30 s timeout: lost candidates). For CPU targets we
register only the CPU intrinsics (~0.3 s for x86) and build candidates without the import.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import time
import types
from pathlib import Path

from tqdm import tqdm

from . import shipped_tuning
from .compile import (
    TUNING_META,
    is_gpu_target,
    module_equality,
    open_database,
    prepare_head,
    resolve_target,
    target_json,
)
from .errors import SettingError
from .io import atomic_path, write_json
from .vnni import register_intrinsic, space_generator, target_has_vnni

LOG = logging.getLogger("retinaflow.tuning")
DATABASE_FILES = ("database_workload.json", "database_tuning_record.json")
CONVOLUTION_TASKS, ALL_TASKS = "convolutions", "all"
TASK_SETS = (CONVOLUTION_TASKS, ALL_TASKS)


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
    target,
    *,
    input_shape: list[int],
    precision: str,
    fp16_accumulate: str,
    trials_per_iter: int,
    seed: int,
    tasks: str,
    use_shipped: bool,
    trials: int = 0,
    trials_per_task: int | None = None,
    model: str | None = None,
    builder_timeout_s: float = 60.0,
) -> dict:
    """Tune with `trials` candidates in all (0: an empty, valid database) into `work_dir`;
    with `trials_per_task`, the budget is that many per extracted task instead. The
    settings without a default are the config's (compilation and tuning).

    With `use_shipped`, a database shipped for `model` on this target's ISA class
    (shipped_tuning) is the start: 0 trials then gives its schedules, more trials tune on
    from them. One shipped for another class, or holding none of the model's convolutions,
    is ignored with a message (logger "retinaflow.tuning").

    The folder is written under a temporary name and renamed when complete. Returns the
    tuning meta, also written to `work_dir`/tuning.json.
    """

    if tasks not in TASK_SETS:
        raise SettingError("tasks", tasks, f"one of {', '.join(TASK_SETS)}")
    if trials_per_task is not None:
        _check_count("trials_per_task", trials_per_task)
        trials = 0
    else:
        _check_count("trials", trials)
    started = time.perf_counter()
    target = resolve_target(target)
    if is_gpu_target(target) and (trials or trials_per_task):
        raise SettingError(
            "trials_per_task",
            trials_per_task or trials,
            "0 for a CUDA target: MetaSchedule times its candidates on the GPU, and a CUDA "
            "build is made where there may be none (dlight's default schedules instead)",
        )
    input_shape = [int(d) for d in input_shape]
    with atomic_path(work_dir) as tmp:
        tmp.mkdir()
        tasks_tuned = 0
        mod, shipped = None, None
        if use_shipped and model is not None:
            choice = shipped_tuning.choose(model, precision, input_shape, target)
            for message in choice.messages:
                LOG.info("%s", message)
            if choice.path is not None:
                mod = prepare_head(onnx_path, input_shape, precision, target, fp16_accumulate)[0]
                shipped = _start_from_shipped(choice, mod, target, tmp)
        if trials > 0 or trials_per_task:
            if mod is None:
                mod = prepare_head(onnx_path, input_shape, precision, target, fp16_accumulate)[0]
            tasks_tuned, trials = tune_module(
                mod,
                target,
                tmp,
                trials,
                trials_per_iter,
                seed,
                builder_timeout_s,
                trials_per_task,
                tasks,
            )
        elif shipped is None:  # creates the two empty tables
            open_database(tmp, target)
        meta = {
            "source_onnx": str(onnx_path),
            "input_shape": input_shape,
            "precision": precision,
            "target": target_json(target),
            "fp16_accumulate": fp16_accumulate if precision == "fp16" else None,
            # the schedules' whole budget: the shipped database's trials and this job's
            "trials": trials + (shipped["trials"] if shipped else 0),
            "trials_here": trials,
            "shipped_database": shipped,
            "trials_per_task": trials_per_task,
            "tasks": tasks_tuned,
            "task_set": tasks,
            "module_equality": module_equality(target),
            "records": _count_lines(Path(tmp) / DATABASE_FILES[1]),
            "seed": seed,
            "tuning_seconds": round(time.perf_counter() - started, 2),
        }
        write_json(Path(tmp) / TUNING_META, meta)
    return meta


def _start_from_shipped(choice, mod, target, work_dir) -> dict | None:
    """Copy the chosen shipped database into `work_dir` if it holds any of the module's
    convolutions; what was taken, or None."""
    shipped_tuning.copy_database(choice.path, Path(work_dir))
    held, total = shipped_tuning.coverage(mod, target, Path(work_dir))
    if held == 0:
        LOG.warning(
            "shipped tuning database %s holds none of this model's %d convolution tasks (the "
            "model differs from the one it was tuned on): ignored",
            choice.path.name,
            total,
        )
        for name in DATABASE_FILES:
            (Path(work_dir) / name).unlink()
        return None
    LOG.info(
        "shipped tuning database %s holds %d of this model's %d convolution tasks",
        choice.path.name,
        held,
        total,
    )
    return {
        "name": choice.path.name,
        "isa": choice.meta.get("isa"),
        "tuned_on": choice.meta.get("tuned_on"),
        "trials": int(choice.meta.get("trials") or 0),
        "convolution_tasks_held": held,
        "convolution_tasks": total,
    }


def _check_count(setting: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SettingError(setting, value, "an integer >= 0")


def is_convolution_task(task_name: str) -> bool:
    """Whether a fused function (MetaSchedule names a task after it) holds a convolution."""
    return "conv2d" in task_name


def tune_module(
    mod,
    target,
    work_dir: str | os.PathLike,
    trials: int,
    trials_per_iter: int = 16,
    seed: int = 0,
    builder_timeout_s: float = 60.0,
    trials_per_task: int | None = None,
    tasks: str = CONVOLUTION_TASKS,
) -> tuple[int, int]:
    """MetaSchedule over the tasks of a fused module (compile.lower_to_fused_tir) into
    `work_dir`'s database, workloads keyed by compile.module_equality; `trials` in all, or
    `trials_per_task` times the number of tasks. Returns (tasks, trials). On a VNNI CPU the
    space includes the VNNI tensorization (vnni.space_generator).

    `tasks`: "convolutions" tunes only the functions that hold a convolution (the FLOPs);
    "all" also the element-wise ones (quantize, residual adds, pads), which in the demo int8
    head cost 1.7 ms of 205 ms untuned, and whose workloads hold the calibration's scales as
    literals, so their records serve one calibration only."""
    from tvm.s_tir import meta_schedule as ms

    _register_intrinsics(target)
    _forget_unnamed_log_handlers()
    equality = module_equality(target)
    extracted = ms.relax_integration.extract_tasks(mod, target, module_equality=equality)
    if tasks == CONVOLUTION_TASKS:
        extracted = [task for task in extracted if is_convolution_task(task.task_name)]

    def run(chosen, budget, per_iter):
        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            chosen, work_dir=str(work_dir), space=space_generator(target), seed=seed
        )
        bar = tqdm(total=budget, desc="tune", unit="trial", file=sys.stderr, mininterval=1)
        ms.tune_tasks(
            measure_callbacks=[
                *ms.measure_callback.MeasureCallback.create("default"),
                _progress_callback(bar),
            ],  # fmt: skip
            tasks=contexts,
            task_weights=weights,
            work_dir=str(work_dir),
            max_trials_global=budget,
            num_trials_per_iter=per_iter,
            builder=ms.builder.LocalBuilder(
                f_build=_build_candidate, timeout_sec=builder_timeout_s
            ),
            runner=ms.runner.LocalRunner(timeout_sec=builder_timeout_s),
            database=open_database(work_dir, target),
            module_equality=equality,
        )
        bar.close()

    if trials_per_task:
        trials = trials_per_task * len(extracted)
    # per task: each task's first round stays within its share
    run(extracted, trials, min(trials_per_iter, trials_per_task or trials))
    if trials_per_task:
        lagging = lagging_tasks(extracted, target, work_dir)
        if lagging:
            LOG.info(
                "tuning again, %d trials each: %s",
                trials_per_task,
                ", ".join(t.task_name for t in lagging),
            )
            run(lagging, trials_per_task * len(lagging), min(trials_per_iter, trials_per_task))
            trials += trials_per_task * len(lagging)
    return len(extracted), trials


def _progress_callback(bar):
    """A MetaSchedule measure callback that moves `bar` by each batch of measured candidates
    (in the tuning process: the builder and runner workers cannot reach the bar)."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class Progress(PyMeasureCallback):
        def apply(
            self, task_scheduler, task_id, measure_candidates, builder_results, runner_results
        ):
            bar.update(len(measure_candidates))

    return Progress()


# A task is tuned a second time when its best schedule is this much slower than the median
# task's speed (FLOP/s) would make it, and it takes at least LAGGING_SHARE of the module's
# tuned time. A first round of 16 candidates drawn at random sometimes holds no good tiling:
# on the demo int8 head two 64-channel convs stayed at 62 and 470 GFLOP/s while the median
# task ran ~1600; 32 more candidates each brought them to ~1850 (their share of the convs'
# time from 80% to 20%).
LAGGING_FACTOR, LAGGING_SHARE = 2.0, 0.02


def lagging_tasks(extracted, target, work_dir) -> list:
    """The extracted tasks whose best record in `work_dir`'s database lags (see above)."""
    import statistics

    from tvm.s_tir.analysis import estimate_tir_flops

    database = open_database(work_dir, target)
    timed = []  # (task, weighted seconds, flop/s)
    for task in extracted:
        mod = task.dispatched[0]
        if not database.has_workload(mod):
            continue
        records = database.get_top_k(database.commit_workload(mod), 1)
        if not records or not records[0].run_secs:
            continue
        seconds = statistics.fmean(float(s) for s in records[0].run_secs)
        flops = float(estimate_tir_flops(mod))
        if seconds > 0 and flops > 0:
            timed.append((task, seconds * task.weight, flops / seconds))
    if len(timed) < 3:
        return []
    median_speed = statistics.median(speed for _, _, speed in timed)
    total = sum(weighted for _, weighted, _ in timed)
    return [
        task
        for task, weighted, speed in timed
        if speed * LAGGING_FACTOR < median_speed and weighted >= LAGGING_SHARE * total
    ]


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
