"""TVM Relax builds of the exported head: fp32, fp16 (ToMixedPrecision) and int8 (the QDQ
model, its convolutions rewritten to integer arithmetic by integer_convs).

A build is one self-contained shared library (weights embedded as constants) plus a meta json
that says how it was made. Tuning (tuning.py) and compile share `lower_to_fused_tir`, so the
MetaSchedule database's workload keys match the functions compile looks up.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .cpu_schedule import SCHEDULED_ATTR as DEFAULT_SCHEDULE_ATTR
from .cpu_schedule import schedule_elementwise
from .errors import SettingError
from .io import atomic_path, read_json, write_json
from .model.head import INPUT_NAME
from .vnni import (
    PACK_PASS_NAME,
    pack_integer_convs,
    register_intrinsic,
    target_has_vnni,
    tensorized_functions,
    uses_vnni,
)

PRECISIONS = ("fp32", "fp16", "int8")
FP16_ACCUMULATE = ("float32", "float16")
INT8_SIMULATED = (
    "simulated: TVM runs the QDQ model's convolutions in float32 (weights dequantized once at "
    "compile time by FoldConstant, activations quantized and dequantized around each "
    "convolution); int8 rounding is modelled, int8 arithmetic is not used"
)
INT8_INTEGER = "integer"
TUNING_META = "tuning.json"
# How tuning and compile key a workload in the MetaSchedule database: by its anchor block (the
# convolution), not the whole fused function, whose epilogue may hold the QDQ model's scales
# and zero points as literals (on the NCHW path FuseOps pulls the next residual add's
# dequantize / quantize into the conv's function). One database then serves the int8 builds
# of every calibration method (see tuning.py). Not on a VNNI target: replaying a tensorized
# (VNNI) trace through the anchor block fails in TVM 0.27 (trace.cc: "old_outputs.size() ==
# new_outputs.size()"), so there workloads are keyed structurally. That costs nothing there:
# a packed conv's function is conv + requantize only, whose per-channel constants (bias,
# multiplier, output zero point) are tensor arguments, not literals, so every calibration
# (and the shipped databases, see shipped_tuning) finds all of its convolutions.
ANCHOR_BLOCK, STRUCTURAL = "anchor-block", "structural"


def module_equality(target) -> str:
    """The database keying for `target` (a tvm Target): see ANCHOR_BLOCK above."""
    return STRUCTURAL if target_has_vnni(target) else ANCHOR_BLOCK


def default_target() -> dict:
    """This host's CPU as a JSON-dict target: LLVM's host CPU name and the usable cores."""
    import tvm

    detected = tvm.target.Target.from_device(tvm.cpu()).export()
    target = {"kind": "llvm"}
    if detected.get("mcpu"):
        target["mcpu"] = detected["mcpu"]
    target["num-cores"] = len(os.sched_getaffinity(0))
    return target


def resolve_target(value: dict | str | None):
    """A tvm Target from the config value: a JSON dict (or its text), a kind such as "llvm",
    or None / "host" for this host's CPU."""
    import tvm

    if value is None or value == "host":
        value = default_target()
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = json.loads(value)
    try:
        return tvm.target.Target(value)
    except (ValueError, TypeError) as err:
        raise SettingError(
            "target",
            value,
            f"not a TVM target ({err}); give a JSON dict such as "
            '{"kind": "llvm", "mcpu": "cascadelake", "num-cores": 2}, or "host"',
        ) from err


def is_gpu_target(target) -> bool:
    """A CUDA target: built here, run where the GPU is; scheduled by dlight's defaults, as
    MetaSchedule tuning would need the GPU to time candidates."""
    return target.kind.name == "cuda"


def gpu_device_code() -> str:
    """What a CUDA build carries for its kernels. Without a CUDA driver (a CPU build machine)
    TVM's codegen keeps the CUDA C source, which the GPU machine's TVM runtime compiles when it
    loads the module (its tvm_callback_cuda_compile; under TVM's runtime alone the runner's,
    runtime/tvm_runner.cuda_runtime_ready); with one, the compiled binary."""
    import tvm

    if tvm.get_global_func("ffi.Module.create.cuda", allow_missing=True) is None:
        return "CUDA C source (compiled by the GPU machine's TVM runtime when it loads the module)"
    return "compiled for the target's arch here"


def target_json(target) -> dict:
    """The target as plain JSON (what meta files record and tuning checks compare)."""
    return json.loads(str(target))


def import_head(onnx_path: str | os.PathLike, input_shape: list[int]):
    """Relax IRModule of the head with a fixed input shape; weights become bound constants,
    so the built library needs nothing but the images."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(onnx_path))
    inputs = [i.name for i in model.graph.input]
    if INPUT_NAME not in inputs:
        raise ValueError(f"{onnx_path} has inputs {inputs}, expected {INPUT_NAME!r}")
    return from_onnx(model, shape_dict={INPUT_NAME: list(input_shape)}, keep_params_in_input=False)


def apply_precision(
    mod,
    precision: str,
    fp16_accumulate: str = "float32",
    int8_report: dict | None = None,
    target=None,
):
    """fp16: ToMixedPrecision casts convolutions to float16 (accumulating in `fp16_accumulate`)
    and FoldConstant stores the cast weights. int8: the QDQ convolutions become integer ones
    (integer_convs; what it did goes into `int8_report` when given), and where `target`'s CPU
    has VNNI they move to the packed layout its intrinsic needs (vnni.pack_integer_convs).
    fp32 passes through."""
    from tvm import relax

    from .integer_convs import PASS_NAME, rewrite_integer_convs

    if precision not in PRECISIONS:
        raise SettingError("precision", precision, f"one of {', '.join(PRECISIONS)}")
    if precision == "int8":
        mod, report = rewrite_integer_convs(mod)
        passes = [PASS_NAME, "DeadCodeElimination"]
        packed = 0
        if target is not None and target_has_vnni(target):
            mod, packed = pack_integer_convs(mod)
            passes.append(PACK_PASS_NAME)
        if int8_report is not None:
            int8_report.update(report.as_meta())
            int8_report["vnni_layout_convs"] = packed
        return mod, passes
    if precision != "fp16":
        return mod, []
    if fp16_accumulate not in FP16_ACCUMULATE:
        raise SettingError(
            "fp16_accumulate", fp16_accumulate, f"one of {', '.join(FP16_ACCUMULATE)}"
        )
    mod = relax.transform.ToMixedPrecision(out_dtype=fp16_accumulate)(mod)
    mod = relax.transform.FoldConstant()(mod)
    return mod, [f"ToMixedPrecision(out_dtype={fp16_accumulate})", "FoldConstant"]


FUSION_PASSES = (
    "DecomposeOpsForInference",
    "CanonicalizeBindings",
    "LegalizeOps",
    "AnnotateTIROpPattern",
    "FoldConstant",
    "FuseOps",
    "FuseTIR",
)


def lower_to_fused_tir(mod, target):
    """Legalize to TIR and fuse (relax.pipeline's zero pipeline): the form MetaSchedule
    extracts tasks from and applies its database to."""
    import tvm
    from tvm import relax

    passes = [getattr(relax.transform, name)() for name in FUSION_PASSES]
    with target:
        return tvm.transform.Sequential(passes)(mod)


def prepare_head(
    onnx_path: str | os.PathLike,
    input_shape: list[int],
    precision: str,
    target,
    fp16_accumulate: str = "float32",
):
    """import -> precision -> fused TIR; returns (module, names of the passes applied)."""
    return lower_head(import_head(onnx_path, input_shape), precision, target, fp16_accumulate)


def lower_head(imported, precision: str, target, fp16_accumulate: str = "float32"):
    """precision -> fused TIR of an imported head; returns (module, names of the passes)."""
    mod, precision_passes = apply_precision(imported, precision, fp16_accumulate, target=target)
    return lower_to_fused_tir(mod, target), [*precision_passes, *FUSION_PASSES]


def conv_input_dtypes(mod) -> list[str]:
    """The data and weight dtypes ("float32*float32") of every conv2d in the imported main
    function: whether TVM will run integer convolutions or float ones."""
    from tvm import relax

    dtypes: list[str] = []

    @relax.expr_functor.visitor
    class _Convs(relax.PyExprVisitor):
        def visit_call_(self, call):
            if getattr(call.op, "name", "") == "relax.nn.conv2d":
                data, weight = call.args[0], call.args[1]
                dtypes.append(f"{data.ty.dtype}*{weight.ty.dtype}")
            super().visit_call_(call)

    _Convs().visit_expr(mod["main"])
    return dtypes


def count_scheduled_functions(mod) -> int:
    """How many TIR functions carry a schedule (from the tuning database); the rest run TVM's
    default loop nests, which is what makes an untuned build slow."""
    import tvm

    return sum(
        1
        for func in mod.functions.values()
        if isinstance(func, tvm.tirx.PrimFunc)
        and func.attrs is not None
        and bool(func.attrs.get("tirx.is_scheduled", False))
        and not bool(func.attrs.get(DEFAULT_SCHEDULE_ATTR, False))
    )


def read_tuning_meta(tuning_dir: str | os.PathLike) -> dict:
    path = Path(tuning_dir) / TUNING_META
    if not path.is_file():
        raise FileNotFoundError(
            f"tuning database {tuning_dir} has no {TUNING_META}: it was not written by "
            "retinaflow.tuning.tune_head; delete the folder and rerun the tuning rule"
        )
    return read_json(path)


def _check_tuning_fits(tuning_dir, tuning: dict, build: dict) -> None:
    """A database tuned for another shape, precision or target would silently not apply."""
    for key in ("input_shape", "precision", "target", "fp16_accumulate", "module_equality"):
        if tuning.get(key) != build.get(key):
            raise ValueError(
                f"tuning database {tuning_dir} was tuned for {key}={tuning.get(key)!r}, but this "
                f"build has {key}={build.get(key)!r}: tune again with the build's settings"
            )


def open_database(work_dir: str | os.PathLike, target, allow_missing: bool = True):
    """The MetaSchedule database in `work_dir` (created when missing and allowed), keyed as
    `target` keys its workloads (module_equality). On a VNNI target its records' traces may
    name the fixed intrinsic, so it is registered first: loading them fails otherwise."""
    from tvm.s_tir import meta_schedule as ms

    if target_has_vnni(target):
        register_intrinsic()
    return ms.database.JSONDatabase(
        work_dir=str(work_dir),
        allow_missing=allow_missing,
        module_equality=module_equality(target),
    )


def apply_tuning_database(mod, target, tuning_dir: str | os.PathLike):
    """Schedule the fused module's functions that the MetaSchedule database in `tuning_dir`
    holds (the rest keep their default loop nests)."""
    import tvm
    from tvm import relax

    database = open_database(tuning_dir, target, allow_missing=False)
    with target, database, tvm.transform.PassContext(opt_level=3):
        return relax.transform.MetaScheduleApplyDatabase()(mod)


def compile_head(
    onnx_path: str | os.PathLike,
    out_so: str | os.PathLike,
    meta_json: str | os.PathLike,
    target,
    precision: str,
    input_shape: list[int],
    tuning_dir: str | os.PathLike | None = None,
    *,
    fp16_accumulate: str,
) -> dict:
    """Build `onnx_path` with TVM Relax into a self-contained `out_so`; write and return meta.

    For int8, `onnx_path` is the QDQ model. With `tuning_dir`, the MetaSchedule database there
    schedules the functions it holds; the rest keep TVM's default (untuned) schedules.
    `target` (None or "host": this CPU; a CUDA target: see is_gpu_target), `fp16_accumulate`:
    the config's compile.* values.
    """
    import tvm

    started = time.perf_counter()
    target = resolve_target(target)
    input_shape = [int(d) for d in input_shape]
    build = {
        "input_shape": input_shape,
        "precision": precision,
        "target": target_json(target),
        "fp16_accumulate": fp16_accumulate if precision == "fp16" else None,
    }
    tuning = None
    if tuning_dir is not None:
        tuning = read_tuning_meta(tuning_dir)
        build["module_equality"] = module_equality(target)
        _check_tuning_fits(tuning_dir, tuning, build)
    imported = import_head(onnx_path, input_shape)
    int8_report: dict = {}
    mod, precision_passes = apply_precision(
        imported, precision, fp16_accumulate, int8_report, target=target
    )
    conv_dtypes = set(conv_input_dtypes(mod if precision == "int8" else imported))
    if int8_report.get("vnni_layout_convs"):  # call_tir to the packed kernel, u8 x s8 too
        conv_dtypes.add("uint8*int8")
    conv_dtypes = sorted(conv_dtypes)
    mod = lower_to_fused_tir(mod, target)
    passes = [*precision_passes, *FUSION_PASSES]
    if tuning_dir is not None:
        mod = apply_tuning_database(mod, target, tuning_dir)
        passes.append("MetaScheduleApplyDatabase")
    tuned_functions = count_scheduled_functions(mod)
    gpu = is_gpu_target(target)
    if gpu:  # dlight's default GPU schedules, in tvm.compile's pipeline
        default_scheduled = 0
    else:
        mod, default_scheduled = schedule_elementwise(mod, target)
        passes.append("schedule_elementwise (parallel, vectorized element-wise functions)")
    vnni_functions = tensorized_functions(mod)
    with tvm.transform.PassContext(opt_level=3):
        executable = tvm.compile(mod, target=target)
    passes.append(
        "relax default CUDA pipeline (tvm.compile: dlight default schedules)"
        if gpu
        else "relax default CPU pipeline (tvm.compile)"
    )
    with atomic_path(out_so) as tmp:
        executable.export_library(str(tmp))
    meta = {
        "tvm_version": tvm.__version__,
        "source_onnx": str(onnx_path),
        **build,
        "passes": passes,
        "params": "embedded as constants (from_onnx keep_params_in_input=False): self-contained",
        "conv_input_dtypes": conv_dtypes,
        "tuning_database": str(tuning_dir) if tuning_dir is not None else None,
        "tuning_trials": tuning["trials"] if tuning else 0,
        "tuning_source_onnx": tuning["source_onnx"] if tuning else None,
        # the shipped database the schedules came from (shipped_tuning), if any
        "tuning_shipped_database": ((tuning or {}).get("shipped_database") or {}).get("name"),
        "tuned_functions": tuned_functions,
        "default_scheduled_functions": default_scheduled,
        "tir_functions": sum(isinstance(f, tvm.tirx.PrimFunc) for f in mod.functions.values()),
        "compile_seconds": round(time.perf_counter() - started, 2),
        "library_bytes": Path(out_so).stat().st_size,
    }
    if gpu:
        meta["device_code"] = gpu_device_code()
    if precision == "int8":
        integer = int8_report.get("integer_convs", 0) > 0
        meta["int8_execution"] = INT8_INTEGER if integer else INT8_SIMULATED
        meta.update(int8_report)
        # "vnni" only when the machine code really has vpdpbusd (a tensorized schedule); a
        # CUDA build's device module cannot be read without the GPU's runtime, nor has VNNI
        vnni = not gpu and integer and uses_vnni(executable)
        meta["intrinsic"] = ("vnni" if vnni else "none") if integer else None
        meta["vnni_tensorized_functions"] = vnni_functions
    write_json(meta_json, meta)
    return meta
