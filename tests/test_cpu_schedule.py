"""The default schedule for element-wise functions that tuning leaves alone
(retinaflow.cpu_schedule): what it schedules, what it leaves, and that results do not change."""

import numpy as np
import tvm
from tvm import relax
from tvm.script import ir as I
from tvm.script import relax as R

from retinaflow.compile import count_scheduled_functions, lower_to_fused_tir, resolve_target
from retinaflow.cpu_schedule import PARALLEL_MIN_ELEMENTS, schedule_elementwise

TARGET = {"kind": "llvm", "num-cores": 2}


@I.ir_module
class Module:
    @R.function
    def main(
        x: R.Tensor((1, 64, 40, 40), "float32"),
        y: R.Tensor((1, 64, 40, 40), "float32"),
        z: R.Tensor((3, 5), "float32"),
    ):
        with R.dataflow():
            a = R.add(x, y)
            b = R.permute_dims(R.multiply(a, R.const(0.37, "float32")), [0, 2, 3, 1])
            c = R.sum(x, axis=[2, 3])  # a reduction: left to TVM's default
            d = R.multiply(z, z)  # 15 elements: neither a vector nor a parallel loop pays
            R.output(b, c, d)
        return (b, c, d)


def _run(mod, target, inputs):
    executable = tvm.compile(mod, target=target)
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return [o.numpy() for o in vm["main"](*[tvm.runtime.tensor(a) for a in inputs])]


def test_elementwise_functions_get_parallel_vector_loops_and_same_results():
    target = resolve_target(TARGET)
    fused = lower_to_fused_tir(Module, target)
    scheduled, count = schedule_elementwise(fused, target)
    texts = {
        gv.name_hint: f.script()
        for gv, f in scheduled.functions.items()
        if isinstance(f, tvm.tirx.PrimFunc)
    }
    elementwise = [name for name, text in texts.items() if "T.parallel" in text]
    assert count == 1 and len(elementwise) == 1  # the add-multiply-transpose, 102400 elements
    assert 64 * 40 * 40 >= PARALLEL_MIN_ELEMENTS > 15
    assert "T.vectorized" in texts[elementwise[0]]
    reduction = [name for name, text in texts.items() if "T.vectorized" not in text]
    assert sorted(reduction) == ["multiply1", "sum"]
    # a default schedule is not a tuned one
    assert count_scheduled_functions(scheduled) == 0

    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s, dtype=np.float32) for s in ((1, 64, 40, 40),) * 2]
    inputs.append(rng.standard_normal((3, 5), dtype=np.float32))
    fused_again = lower_to_fused_tir(Module, target)
    for got, want in zip(_run(scheduled, target, inputs), _run(fused_again, target, inputs)):
        # the same float ops on the same elements, only in another loop order
        np.testing.assert_array_equal(got, want)
