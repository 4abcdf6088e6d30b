"""A default CPU schedule for the element-wise functions that tuning leaves alone.

Tuning spends its trials on the convolutions (tuning.py). What remains unscheduled after the
database is applied would run as TVM's default loop nest: one thread, scalar. In the tuned demo
int8 head those functions (quantize / dequantize around the residual adds and the FPN's
resize, pads, layout changes) took 1.6 of 3.7 ms. `schedule_elementwise` gives each function
that is, after inlining, a single spatial block (no reduction) the schedule MetaSchedule would
find for it anyway: its loops fused, split into a parallel outer loop and a vector inner one.
Functions with a reduction or several blocks keep TVM's default. The values computed do not
change (the same ops on the same elements, in another order).

dlight (TVM's rule-based scheduler) has this for GPUs (`dlight.gpu.Fallback`) but not for CPUs.
"""

from __future__ import annotations

# Below this many output elements a parallel loop costs more (waking the pool) than it saves.
PARALLEL_MIN_ELEMENTS = 4096
VECTOR_LANES = (16, 8, 4, 2)
SCHEDULED_ATTR = "retinaflow.default_schedule"


def _rule():
    from tvm import s_tir, tirx
    from tvm.s_tir.dlight.analysis import normalize_prim_func
    from tvm.s_tir.dlight.base import try_inline
    from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

    class ParallelElementwise(CPUScheduleRule):
        """One spatial block after inlining: fuse, parallel outer, vectorize inner."""

        def apply(self, func, target, _tunable):
            if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
                return None
            sch = s_tir.Schedule(func)
            infos = normalize_prim_func(sch)
            if infos is None:
                return None
            infos = try_inline(sch, infos)
            if len(infos) != 1 or any(kind != "S" for kind in infos[0].dom_kind()):
                return None
            block = infos[0].block_rv
            loops = sch.get_loops(block)
            if not loops:
                return None
            fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
            extent = sch.get(fused).extent
            if not isinstance(extent, tirx.IntImm):
                return None
            extent = int(extent)
            lanes = next((n for n in VECTOR_LANES if extent % n == 0), 1)
            if lanes == 1 and extent < PARALLEL_MIN_ELEMENTS:
                return None  # nothing to gain: keep TVM's loop
            if lanes > 1:
                fused, inner = sch.split(fused, factors=[None, lanes])
                sch.vectorize(inner)
            if extent >= PARALLEL_MIN_ELEMENTS:
                sch.parallel(fused)
            return sch

    return ParallelElementwise()


def schedule_elementwise(mod, target):
    """Schedule the module's unscheduled element-wise PrimFuncs (see the module doc); returns
    (module, how many were scheduled). Functions carrying a tuned schedule are left as they
    are; the ones scheduled here are marked with SCHEDULED_ATTR, so that a count of tuned
    functions (compile.count_scheduled_functions) can tell them apart."""
    import tvm

    rule = _rule()
    updated = {}
    with target:
        for gvar, func in mod.functions.items():
            if not isinstance(func, tvm.tirx.PrimFunc):
                continue
            if func.attrs is not None and bool(func.attrs.get("tirx.is_scheduled", False)):
                continue
            sch = rule.apply(func, target, False)
            if sch is not None:
                updated[gvar] = (
                    sch.mod["main"]
                    .with_attr("tirx.is_scheduled", True)
                    .with_attr(SCHEDULED_ATTR, True)
                )
    for gvar, func in updated.items():
        mod[gvar] = func
    return mod, len(updated)
