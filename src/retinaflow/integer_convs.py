"""Integer convolutions for a QDQ model imported into Relax: the int8 build runs u8 x s8 -> int32.

TVM's ONNX frontend keeps QuantizeLinear / DequantizeLinear as `R.quantize` / `R.dequantize`,
so a QDQ convolution arrives as

    xd = dequantize(xq, s_x, zp_x)                 # xq: u8 (or s8) activations, scalar scale
    wd = dequantize(W, s_w, 0, axis=0)             # W: s8 constant, one scale per out channel
    y  = conv2d(xd, wd, strides, padding, dilation, groups)
    b  = reshape(dequantize(B, s_b, 0, axis=0), [1, O, 1, 1])   # B: int32 constant
    yq = quantize(add(y, b), s_y, zp_y)            # u8 (or s8); ReLU is folded in by ORT
                                                   # (zp_y = 0, the clip at 0 is the ReLU)

and runs in float32 with int8 rounding only simulated. `rewrite_integer_convs` replaces each
such `yq` by

    xp  = pad(xq, zp_x)                            # explicit: the border is exact zero
    acc = conv2d(xp, W, padding=0, out_dtype="int32")         # u8 x s8 -> int32
    acc = acc + (B' - zp_x * sum(W over I, KH, KW))           # folded int32 constant
    yq  = clip(round(float32(acc) * M) + zp_y)                # M = s_x * s_w / s_y per channel

which is what ONNX Runtime's QLinearConv computes (its requantize multiplies by the float32
M, rounds half to even, adds zp_y and clips), B' = B when s_b = s_x * s_w (ORT's quantizer
writes exactly that). The rewritten conv reads `xq` itself, so where a quantized conv feeds
another (Q -> DQ -> conv), the DQ is no longer used and dead-code elimination drops it:
chains of integer convs stay in the u8 domain and quantize / dequantize run only where a float
op (residual / FPN add, resize, the head maps) needs the float value.

What does not match (a float input, weights with a zero point, a per-channel activation scale,
another layout) stays float; the report says what and how much.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

INTEGER_DTYPES = {"uint8": (0, 255), "int8": (-128, 127)}
PASS_NAME = "IntegerConvs (QDQ conv2d -> u8 x s8 -> int32 conv2d + requantize)"
# ops that carry no arithmetic worth reporting as "stays float"
_BOOKKEEPING = {"relax.reshape"}
# float32 ops of one rewritten conv's requantize: astype(acc), multiply(M), round, add(zp), clip
_EPILOGUE_FLOAT_OPS = ("astype", "multiply", "round", "add", "clip")


@dataclass
class IntegerConvReport:
    """What the rewrite did: how many conv2d the module held, how many became integer, and the
    float ops that remain (op name -> count; quantize / dequantize are the chain ends)."""

    convs_total: int = 0
    convs_integer: int = 0
    skipped: list[str] = field(default_factory=list)
    stays_float: dict[str, int] = field(default_factory=dict)

    @property
    def convs_float(self) -> int:
        return self.convs_total - self.convs_integer

    def as_meta(self) -> dict:
        return {
            "integer_convs": self.convs_integer,
            "float_convs": self.convs_float,
            "stays_float": dict(sorted(self.stays_float.items())),
            "not_rewritten": list(self.skipped),
        }


def _scalar(const) -> float | None:
    value = const.value.numpy()
    return value.reshape(-1)[0].item() if value.size == 1 else None


def requantize_multiplier(s_x: float, s_w: np.ndarray, s_y: float) -> np.ndarray:
    """M = s_x * s_w / s_y per output channel, in float32 arithmetic as ORT's QLinearConv
    computes it (X_scale * W_scale[i] / Y_scale)."""
    s_w = np.asarray(s_w, dtype=np.float32).reshape(-1)
    return (np.float32(s_x) * s_w) / np.float32(s_y)


def fold_bias(
    weight: np.ndarray, zp_x: int, bias_q: np.ndarray | None, bias_ratio: np.ndarray | None
) -> np.ndarray:
    """The int32 constant added to the u8 x s8 accumulator: B' - zp_x * sum(W over I, KH, KW).

    `bias_ratio` is s_b / (s_x * s_w) per channel; 1 (ORT's quantizer) keeps B as it is,
    anything else re-expresses B in the accumulator's scale."""
    out_channels = weight.shape[0]
    folded = -int(zp_x) * weight.astype(np.int64).reshape(out_channels, -1).sum(axis=1)
    if bias_q is not None:
        bias = bias_q.astype(np.int64).reshape(-1)
        if bias_ratio is not None and not np.allclose(bias_ratio, 1.0, rtol=1e-6, atol=0):
            bias = np.round(bias.astype(np.float64) * bias_ratio).astype(np.int64)
        folded = folded + bias
    if np.abs(folded).max(initial=0) >= 2**31:
        raise OverflowError("folded conv bias does not fit int32")
    return folded.astype(np.int32)


def _patterns():
    from tvm.relax.dpl import is_const, is_op, wildcard

    p = {name: is_const() for name in ("x_s", "x_zp", "w", "w_s", "w_zp", "b", "b_s", "b_zp")}
    p["y_s"], p["y_zp"] = is_const(), is_const()
    p["xq"] = wildcard()
    xd = is_op("relax.dequantize")(p["xq"], p["x_s"], p["x_zp"])
    p["wd"] = is_op("relax.dequantize")(p["w"], p["w_s"], p["w_zp"])
    p["conv"] = is_op("relax.nn.conv2d")(xd, p["wd"])
    bias = is_op("relax.reshape")(
        is_op("relax.dequantize")(p["b"], p["b_s"], p["b_zp"]), wildcard()
    )
    p["biased"] = is_op("relax.add")(p["conv"], bias)
    p["root"] = is_op("relax.quantize")(p["biased"] | p["conv"], p["y_s"], p["y_zp"])
    return p


class _Rewriter:
    def __init__(self, report: IntegerConvReport):
        self.report = report
        self.patterns = _patterns()
        self._weights: dict = {}  # one int8 constant per DQ'd weight, shared by its convs

    def _skip(self, why: str, orig):
        self.report.skipped.append(why)
        return orig

    def __call__(self, orig, matches):
        from tvm import relax

        p = self.patterns
        conv = matches[p["conv"]]
        attrs = conv.attrs
        xq = matches[p["xq"]]
        x_dtype = str(xq.ty.dtype)
        y_dtype = str(orig.ty.dtype)
        weight = matches[p["w"]].value.numpy()
        if x_dtype not in INTEGER_DTYPES or y_dtype not in INTEGER_DTYPES:
            return self._skip(f"conv with {x_dtype} input / {y_dtype} output", orig)
        if weight.dtype != np.int8:
            return self._skip(f"conv with {weight.dtype} weights", orig)
        if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NCHW", "OIHW", "NCHW"):
            return self._skip(f"conv in layout {attrs.data_layout}/{attrs.kernel_layout}", orig)
        s_x, zp_x = _scalar(matches[p["x_s"]]), _scalar(matches[p["x_zp"]])
        s_y, zp_y = _scalar(matches[p["y_s"]]), _scalar(matches[p["y_zp"]])
        if None in (s_x, zp_x, s_y, zp_y):
            return self._skip("conv with a per-channel activation scale or zero point", orig)
        out_channels = weight.shape[0]
        s_w = matches[p["w_s"]].value.numpy().astype(np.float32).reshape(-1)
        if s_w.size == 1:
            s_w = np.repeat(s_w, out_channels)
        w_zp = matches[p["w_zp"]].value.numpy()
        w_axis = int(matches[p["wd"]].attrs.axis)
        if s_w.size != out_channels or w_axis != 0 or np.any(w_zp != 0):
            return self._skip("conv with asymmetric or non-per-output-channel weights", orig)

        bias_q = bias_ratio = None
        if p["biased"] in matches:
            bias_q = matches[p["b"]].value.numpy()
            if bias_q.dtype != np.int32 or np.any(matches[p["b_zp"]].value.numpy() != 0):
                return self._skip("conv with a bias that is not int32 symmetric", orig)
            s_b = matches[p["b_s"]].value.numpy().astype(np.float64).reshape(-1)
            bias_ratio = s_b / (np.float64(s_x) * s_w.astype(np.float64))
        folded = fold_bias(weight, int(zp_x), bias_q, bias_ratio)
        multiplier = requantize_multiplier(s_x, s_w, s_y)

        data = xq
        top, left, bottom, right = (int(v) for v in attrs.padding)
        if top or left or bottom or right:
            data = relax.op.nn.pad(
                xq, [0, 0, 0, 0, top, bottom, left, right], pad_value=float(zp_x)
            )
        key = matches[p["w"]]
        if key not in self._weights:
            self._weights[key] = relax.const(weight, "int8")
        acc = relax.op.nn.conv2d(
            data,
            self._weights[key],
            strides=attrs.strides,
            padding=[0, 0, 0, 0],
            dilation=attrs.dilation,
            groups=int(attrs.groups),
            out_dtype="int32",
        )
        shape = (1, out_channels, 1, 1)
        acc = relax.op.add(acc, relax.const(folded.reshape(shape), "int32"))
        scaled = relax.op.multiply(
            relax.op.astype(acc, "float32"), relax.const(multiplier.reshape(shape), "float32")
        )
        low, high = INTEGER_DTYPES[y_dtype]
        # zp_y as a per-channel tensor, not a scalar: TVM inlines a scalar constant into the
        # TIR as a literal, and then the fused conv's workload (its MetaSchedule database key)
        # would depend on the calibration; as a tensor it is an argument, and every calibration
        # method (and a model trained on another CPU) shares the tuned conv
        zp = np.full(shape, zp_y, np.float32)
        shifted = relax.op.add(relax.op.round(scaled), relax.const(zp, "float32"))
        clipped = relax.op.clip(shifted, float(low), float(high))
        self.report.convs_integer += 1
        return relax.op.astype(clipped, y_dtype)


def _count_ops(func) -> tuple[int, int, Counter]:
    """(conv2d total, integer conv2d, float ops by name) in a Relax function."""
    import tvm
    from tvm import relax

    counts = {"convs": 0, "integer": 0}
    floats: Counter = Counter()

    @relax.expr_functor.visitor
    class _Ops(relax.PyExprVisitor):
        def visit_call_(self, call):
            name = getattr(call.op, "name", "")
            if name == "relax.nn.conv2d":
                counts["convs"] += 1
                if "int" in str(call.args[0].ty.dtype):
                    counts["integer"] += 1
            dtype = str(getattr(call.ty, "dtype", ""))
            is_float = dtype.startswith("float") or name == "relax.quantize"
            constant_dq = name == "relax.dequantize" and isinstance(
                call.args[0], tvm.ir.expr.Constant
            )
            if is_float and name not in _BOOKKEEPING and not constant_dq:
                floats[name.removeprefix("relax.")] += 1
            super().visit_call_(call)

    _Ops().visit_expr(func)
    return counts["convs"], counts["integer"], floats


def rewrite_integer_convs(mod, func_name: str = "main"):
    """Rewrite every QDQ conv of `mod[func_name]` to integer arithmetic (see the module doc).

    Returns (module, IntegerConvReport). Dead bindings (the dequantize that only fed a
    rewritten conv, the float weights) are removed."""
    import tvm
    from tvm import relax
    from tvm.relax.dpl import rewrite_call

    report = IntegerConvReport()
    report.convs_total, _, _ = _count_ops(mod[func_name])
    rewriter = _Rewriter(report)
    func = rewrite_call(rewriter.patterns["root"], rewriter, mod[func_name])
    functions = {gv: f for gv, f in mod.functions.items() if gv.name_hint != func_name}
    functions[mod.get_global_var(func_name)] = func
    mod = tvm.IRModule(functions, attrs=mod.attrs)
    mod = relax.transform.Normalize()(mod)
    mod = relax.transform.DeadCodeElimination([func_name])(mod)
    total, integer, floats = _count_ops(mod[func_name])
    if total != report.convs_total or integer != report.convs_integer:
        raise AssertionError(
            f"integer conv rewrite miscounted: {integer} of {total} conv2d are integer, "
            f"the rewriter made {report.convs_integer} of {report.convs_total}"
        )
    # the requantize epilogue of each integer conv is float32 by design: not "stays float"
    for op in _EPILOGUE_FLOAT_OPS:
        floats[op] -= report.convs_integer
    report.stays_float = {op: n for op, n in floats.items() if n > 0}
    return mod, report
