"""AVX-512 VNNI (vpdpbusd: u8 x s8 -> int32, 4 products per lane) for the integer convolutions.

The apache-tvm 0.27 wheel ships a VNNI tensor intrinsic (`dot_16x4_vnni`) whose implementation
passes the broadcast activations and the weights as <16 x i32> to llvm.x86.avx512.vpdpbusd.512;
the wheel's LLVM 22 declares that intrinsic with <64 x i8> operands, so every candidate that
uses it fails to build. `register_intrinsic` registers the same description under VNNI_INTRIN
with an implementation that passes A as uint8x64 and B as int8x64. It is a new name, so a
process that did not register it fails loudly instead of falling back to the broken one: the
tuner, its build workers (tuning._build_candidate) and compile (replaying the database's
traces) all register it.

MetaSchedule's default x86 rules reference the broken name; `space_generator` gives the
default LLVM rules with MultiLevelTilingWithIntrin(VNNI_INTRIN) and the RewriteTensorize
postproc added (what the wheel does for a VNNI CPU, with the fixed intrinsic).
"""

from __future__ import annotations

VNNI_INTRIN = "retinaflow_dot_16x4_vnni"
VNNI_FEATURES = ("avx512vnni",)
INTRINSIC_INSTRUCTION = "vpdpbusd"


def target_has_vnni(target) -> bool:
    """Whether the LLVM target's CPU (its `mcpu`) has AVX-512 VNNI. A target without `mcpu`
    (generic x86-64) has none: LLVM would not emit vpdpbusd for it."""
    from tvm.target import codegen

    if target.kind.name != "llvm" or not target.attrs.get("mcpu"):
        return False
    try:
        return bool(codegen.llvm_cpu_has_features(list(VNNI_FEATURES), target))
    except Exception:  # a non-x86 triple: the feature name is unknown there
        return False


def register_intrinsic() -> str:
    """Register the fixed VNNI intrinsic (idempotent, per process); returns its name."""
    from tvm.s_tir import TensorIntrin

    try:
        TensorIntrin.get(VNNI_INTRIN, allow_missing=False)
        return VNNI_INTRIN
    except Exception:  # not registered yet in this process
        pass
    TensorIntrin.register(VNNI_INTRIN, *_desc_and_impl())
    return VNNI_INTRIN


def _desc_and_impl():
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def desc(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((16, 4), "int8", offset_factor=1),
        C: T.Buffer((16,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:4], B[0:16, 0:4])
            T.writes(C[0:16])
            for i in T.serial(0, 16):
                for k in T.serial(0, 4):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        C[vi] = C[vi] + T.cast(A[vk], "int32") * T.cast(B[vi, vk], "int32")

    @T.prim_func(s_tir=True)
    def impl(
        A: T.Buffer((4,), "uint8", offset_factor=1),
        B: T.Buffer((16, 4), "int8", offset_factor=1),
        C: T.Buffer((16,), "int32", offset_factor=1),
    ) -> None:
        with T.sblock("root"):
            T.reads(C[0:16], A[0:4], B[0:16, 0:4])
            T.writes(C[0:16])
            a_i32 = T.reinterpret(A.vload([0], "uint8x4"), dtype="int32")
            a_u8x64 = T.reinterpret(T.broadcast(a_i32, 16), dtype="uint8x64")
            b_i8x64 = B.vload([0, 0], dtype="int8x64")
            C[T.ramp(T.int32(0), 1, 16)] = T.call_llvm_pure_intrin(
                T.llvm_lookup_intrinsic_id("llvm.x86.avx512.vpdpbusd.512"),
                C.vload([0], dtype="int32x16"),
                a_u8x64,
                b_i8x64,
                dtype="int32x16",
            )

    return desc, impl


def space_generator(target):
    """MetaSchedule's post-order-apply space for `target`; on a VNNI CPU the default LLVM rules
    plus MultiLevelTilingWithIntrin(VNNI_INTRIN) and RewriteTensorize (with the fixed
    intrinsic), else the string "post-order-apply" (the wheel's defaults)."""
    if not target_has_vnni(target):
        return "post-order-apply"
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule import _ffi_api

    register_intrinsic()
    rules = list(_ffi_api.ScheduleRuleDefaultLLVM())
    tiling = next(i for i, r in enumerate(rules) if type(r).__name__ == "MultiLevelTiling")
    rules.insert(
        tiling,
        ms.schedule_rule.MultiLevelTilingWithIntrin(
            VNNI_INTRIN,
            structure="SSRSRS",
            tile_binds=None,
            max_innermost_factor=64,
            vector_load_lens=None,
            reuse_read=None,
            reuse_write=ms.schedule_rule.ReuseType(req="may", levels=[1, 2], scope="global"),
        ),
    )
    postprocs = list(_ffi_api.PostprocDefaultLLVM())
    layout = next(i for i, p in enumerate(postprocs) if type(p).__name__ == "RewriteLayout")
    postprocs.insert(layout, ms.postproc.RewriteTensorize(vectorize_init_loop=True))
    return ms.space_generator.PostOrderApply(
        sch_rules=rules, postprocs=postprocs, mutator_probs="llvm"
    )


def uses_vnni(executable) -> bool:
    """Whether a compiled Relax executable runs the VNNI intrinsic: 512-bit vpdpbusd (zmm).

    LLVM's own vectorizer, given a VNNI mcpu, already emits some 128-bit `{vex} vpdpbusd xmm`
    in the untensorized integer convs (113 in the untuned demo head); those do not count."""
    for text in _assembly(executable):
        for line in text.splitlines():
            if INTRINSIC_INSTRUCTION in line and "zmm" in line:
                return True
    return False


def tensorized_functions(mod) -> int:
    """How many TIR functions of a (scheduled) module call the VNNI intrinsic."""
    import tvm

    return sum(
        1
        for func in mod.functions.values()
        if isinstance(func, tvm.tirx.PrimFunc) and "llvm.x86.avx512.vpdpbusd" in str(func)
    )


def _assembly(executable):
    mod = executable.mod
    stack, seen = [mod], set()
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        try:
            yield m.inspect_source("asm")
        except Exception:  # modules without assembly (the VM bytecode, constants)
            pass
        stack.extend(getattr(m, "imports", None) or getattr(m, "imported_modules", []))


# ------------------------------------------------------------------ the packed (VNNI) layout
#
# vpdpbusd multiplies 4 consecutive u8 activations (input channels) with a 16x4 block of s8
# weights (16 output channels x the same 4 input channels) into 16 int32 lanes. MetaSchedule
# maps a conv onto it (MultiLevelTilingWithIntrin) when the conv reads channels-last u8 data
# and weights packed [O/16, KH, KW, I/4, 16o, 4i] and writes [N, OH, OW, O/16, 16o]; the NCHW
# conv that Relax legalizes gives it no such design space. `pack_integer_convs` rewrites each
# non-grouped integer conv (integer_convs' form: conv2d(u8, s8) -> int32 -> + bias ->
# requantize -> u8, NCHW) to that layout: a `call_tir` to the packed conv (weights packed once,
# here), the requantize on the packed int32 (FuseOps fuses it into the conv), the u8 result
# brought back to NCHW. Between two packed convs the NCHW round trip (permute there and back)
# cancels, so a chain of convs stays channels-last and only its ends pay a layout change.
# Channels are zero-padded to the multiples the intrinsic needs (I to 4, O to 16): padded
# weights are zero, padded outputs are sliced off. Grouped convs stay NCHW.

_TO_NHWC, _TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
PACK_PASS_NAME = "PackIntegerConvs (u8 NHWC x s8 [O/16,KH,KW,I/4,16o,4i] -> int32, VNNI layout)"


def packed_conv_primfunc(data_shape, out_channels, kernel, stride, dilation):
    """TE conv: data u8 [N, H, W, C] (padded beforehand, C % 4 == 0), weights s8
    [O/16, KH, KW, C/4, 16, 4] -> int32 [N, OH, OW, O/16, 16]."""
    from tvm import te

    n, height, width, channels = (int(v) for v in data_shape)
    (kh_, kw_), (sh, sw), (dh, dw) = kernel, stride, dilation
    out_h = (height - dh * (kh_ - 1) - 1) // sh + 1
    out_w = (width - dw * (kw_ - 1) - 1) // sw + 1
    data = te.placeholder((n, height, width, channels), "uint8", name="data")
    weight = te.placeholder(
        (out_channels // 16, kh_, kw_, channels // 4, 16, 4), "int8", name="weight"
    )
    kh = te.reduce_axis((0, kh_), "kh")
    kw = te.reduce_axis((0, kw_), "kw")
    ico = te.reduce_axis((0, channels // 4), "ico")
    ici = te.reduce_axis((0, 4), "ici")
    conv = te.compute(
        (n, out_h, out_w, out_channels // 16, 16),
        lambda b, y, x, ob, oi: te.sum(
            data[b, y * sh + kh * dh, x * sw + kw * dw, ico * 4 + ici].astype("int32")
            * weight[ob, kh, kw, ico, oi, ici].astype("int32"),
            axis=[kh, kw, ico, ici],
        ),
        name="conv2d_vnni",
    )
    return te.create_prim_func([data, weight, conv], index_dtype_override="int64")


def pack_weight(weight, in_channels: int, out_channels: int):
    """s8 [O, I, KH, KW] -> [O'/16, KH, KW, I'/4, 16, 4], zero-padded to O' / I'."""
    import numpy as np

    o, i, kh, kw = weight.shape
    padded = np.zeros((out_channels, in_channels, kh, kw), np.int8)
    padded[:o, :i] = weight
    packed = padded.reshape(out_channels // 16, 16, in_channels // 4, 4, kh, kw)
    return np.ascontiguousarray(packed.transpose(0, 4, 5, 2, 1, 3))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _chain_patterns():
    from tvm.relax.dpl import is_const, is_op, wildcard

    p = {"x": wildcard(), "w": is_const(), "b": is_const(), "m": is_const(), "zp": is_const()}
    p["pad"] = is_op("relax.nn.pad")(p["x"])
    p["conv"] = is_op("relax.nn.conv2d")(p["pad"] | p["x"], p["w"])
    acc = is_op("relax.add")(p["conv"], p["b"])
    scaled = is_op("relax.multiply")(is_op("relax.astype")(acc), p["m"])
    shifted = is_op("relax.add")(is_op("relax.round")(scaled), p["zp"])
    p["clip"] = is_op("relax.clip")(shifted, wildcard(), wildcard())
    p["root"] = is_op("relax.astype")(p["clip"])
    return p


class _Packer:
    def __init__(self, builder):
        self.patterns = _chain_patterns()
        self.builder = builder  # holds the module; the packed kernels are added to it
        self.kernels: dict = {}  # shape key -> GlobalVar
        self.packed = 0

    def _kernel(self, data_shape, out_channels, kernel, stride, dilation):
        key = (tuple(data_shape), out_channels, kernel, stride, dilation)
        if key not in self.kernels:
            func = packed_conv_primfunc(data_shape, out_channels, kernel, stride, dilation)
            name = f"conv2d_vnni{len(self.kernels)}"
            self.kernels[key] = self.builder.add_func(func.with_attr("global_symbol", name), name)
        return self.kernels[key]

    def __call__(self, orig, matches):
        import numpy as np
        from tvm import relax

        p = self.patterns
        conv = matches[p["conv"]]
        attrs = conv.attrs
        if int(attrs.groups) != 1 or str(conv.args[0].ty.dtype) != "uint8":
            return orig
        x = matches[p["x"]]
        weight = matches[p["w"]].value.numpy()
        out_c, in_c, kh, kw = weight.shape
        if str(x.ty.dtype) != "uint8" or len(x.ty.shape) != 4:
            return orig
        pads = [0, 0, 0, 0]  # top, bottom, left, right
        pad_value = 0.0
        if p["pad"] in matches:
            pad = matches[p["pad"]]
            width = [int(v) for v in pad.attrs.pad_width]
            if width[:4] != [0, 0, 0, 0] or str(pad.attrs.pad_mode) != "constant":
                return orig
            pads = width[4:8]
            pad_value = float(pad.attrs.pad_value)
        in_p, out_p = _round_up(in_c, 4), _round_up(out_c, 16)
        n, _, height, width_ = (int(v) for v in x.ty.shape)
        data = relax.op.permute_dims(x, list(_TO_NHWC))
        channel_pad = in_p - in_c
        if any(pads) or channel_pad:
            data = relax.op.nn.pad(data, [0, 0, *pads, 0, channel_pad], pad_value=pad_value)
        data_shape = (n, height + pads[0] + pads[1], width_ + pads[2] + pads[3], in_p)
        stride = tuple(int(v) for v in attrs.strides)
        dilation = tuple(int(v) for v in attrs.dilation)
        gvar = self._kernel(data_shape, out_p, (kh, kw), stride, dilation)
        out_h = (data_shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        out_w = (data_shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        packed_w = relax.const(pack_weight(weight, in_p, out_p), "int8")
        acc = relax.call_tir(
            gvar,
            relax.Tuple([data, packed_w]),
            out_ty=relax.TensorType([n, out_h, out_w, out_p // 16, 16], "int32"),
        )

        def per_channel(const, dtype):
            values = const.value.numpy().reshape(-1)
            full = np.zeros(out_p, values.dtype)
            full[:out_c] = values if values.size == out_c else values[0]
            return relax.const(full.reshape(1, 1, 1, out_p // 16, 16), dtype)

        clip = matches[p["clip"]]
        acc = relax.op.add(acc, per_channel(matches[p["b"]], "int32"))
        scaled = relax.op.multiply(
            relax.op.astype(acc, "float32"), per_channel(matches[p["m"]], "float32")
        )
        shifted = relax.op.add(relax.op.round(scaled), per_channel(matches[p["zp"]], "float32"))
        clipped = relax.op.clip(shifted, *clip.args[1:])
        y = relax.op.astype(clipped, str(orig.ty.dtype))
        y = relax.op.reshape(y, [n, out_h, out_w, out_p])
        if out_p != out_c:
            y = relax.op.strided_slice(y, axes=[3], begin=[0], end=[out_c])
        self.packed += 1
        return relax.op.permute_dims(y, list(_TO_NCHW))


def _cancel_round_trips(func):
    """permute_dims(permute_dims(y, NHWC->NCHW), NCHW->NHWC) -> y."""
    from tvm.relax.dpl import is_op, rewrite_call, wildcard

    inner_x = wildcard()
    inner = is_op("relax.permute_dims")(inner_x)
    outer = is_op("relax.permute_dims")(inner)

    def rewrite(orig, matches):
        first = [int(a) for a in matches[inner].attrs.axes]
        second = [int(a) for a in orig.attrs.axes]
        if [first[a] for a in second] == list(range(len(first))):
            return matches[inner_x]
        return orig

    return rewrite_call(outer, rewrite, func)


def pack_integer_convs(mod, func_name: str = "main"):
    """Rewrite integer_convs' NCHW integer convs to the packed VNNI layout (see above).
    Returns (module, number of convs packed)."""
    from tvm import relax
    from tvm.relax.dpl import rewrite_call

    builder = relax.BlockBuilder(mod)
    packer = _Packer(builder)
    func = rewrite_call(packer.patterns["root"], packer, mod[func_name])
    func = _cancel_round_trips(func)
    builder.update_func(mod.get_global_var(func_name), func)
    mod = builder.get()
    mod = relax.transform.Normalize()(mod)
    mod = relax.transform.DeadCodeElimination([func_name])(mod)
    return mod, packer.packed
