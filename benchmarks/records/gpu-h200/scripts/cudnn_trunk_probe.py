"""Run in the tenth lease (cudnn-trunk-probe.txt/.json): can cuDNN's own fp8 and int8 convolutions, through
its graph API (the cudnn frontend's Python bindings, nvidia-cudnn-frontend 1.16.0 from PyPI,
carried as a wheel: make_wheels.sh), make the trunk what TensorRT makes it (issue 13)?

The trunk (ResNeXt50-32x4d, FPN, P6/P7) is ~11.5 ms a batch of 32 in cuDNN fp16 on the H200,
its 1x1s bound by memory at 200x200; an int8 GEMM in Triton did not beat cuDNN's fused fp16
calls (int8-1x1-bench.txt). TensorRT's int8 harness keeps activations in 8 bits end to end.
For every convolution of the trunk at 800x800 (found by hooks on the model, counted by
shape), batch 32, channels-last:
  fp16  torch.cudnn_convolution_relu / _add_relu, what model/fused_backbone.py calls;
  fp8   cuDNN graph: x, w FP8_E4M3 -> conv (fp32) -> x per-channel descale -> bias
        (-> + residual) (-> relu) -> FP8_E4M3 out (scaled), else HALF out;
  int8  cuDNN graph: x, w INT8 -> conv (int32) -> per-channel scale -> bias (-> + residual)
        (-> relu) -> INT8 out, else HALF out;
each: supported or why not, ms (CUDA events, median of 3 runs of 20), and its relative L2
error against the float32 convolution of the same quantized inputs (the output's rounding).
Then the sums over the trunk, count-weighted: what an 8-bit trunk's convolutions would take.

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    PYTHONPATH=$PWD/src:/tmp/site python3 benchmarks/records/gpu-h200/scripts/cudnn_trunk_probe.py [--check]

`--check` (any machine, no GPU needed): builds and validates every graph, times nothing.
"""
import json, os, statistics, sys
from collections import Counter

import torch
import torch.nn.functional as F

import cudnn
from retinaflow.model.architectures import build_retinanet
from retinaflow.model.head import HeadMaps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grouped_conv_bench import bench  # noqa: E402  the records' CUDA-event timer

N, SIZE = 32, 800
CHECK = "--check" in sys.argv
DT = cudnn.data_type


def trunk_convs():
    """(C, K, kh, kw, stride, pad, groups, H, W, relu, residual) -> count, for each Conv2d of
    the trunk, from hooks on a batch-1 forward at SIZE (on the GPU where there is one)."""
    model = build_retinanet("resnext50_32x4d_fpn", 264, SIZE).eval()
    trunk = HeadMaps(model).eval()
    seen = Counter()
    hooks = []
    for name, module in model.backbone.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            def hook(mod, inputs, output, name=name):
                _, c, h, w = inputs[0].shape
                relu = (name.endswith(("conv1", "conv2", "conv3")) and "layer" in name) or name == "body.conv1"
                residual = name.endswith("conv3") and "layer" in name
                key = (c, mod.out_channels, *mod.kernel_size, mod.stride[0], mod.padding[0],
                       mod.groups, h, w, relu, residual)
                seen[key] += 1
            hooks.append(module.register_forward_hook(hook))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.no_grad():
        model.backbone.to(device)(torch.zeros(1, 3, SIZE, SIZE, device=device))
    for h in hooks:
        h.remove()
    return seen


def nhwc(n, c, h, w):
    return [n, c, h, w], [c * h * w, 1, c * w, c]


def build_graph(handle, kind, key, out_type):
    """The cuDNN graph of one conv in `kind` (fp8 | int8), output `out_type`; its tensors."""
    c, k, kh, kw, stride, pad, groups, h, w, relu, residual = key
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    io = DT.FP8_E4M3 if kind == "fp8" else DT.INT8
    compute = DT.FLOAT if kind == "fp8" else DT.INT32
    g = cudnn.pygraph(io_data_type=DT.HALF, intermediate_data_type=DT.FLOAT,
                      compute_data_type=DT.FLOAT, **({"handle": handle} if handle else {}))
    cg = c // groups
    X = g.tensor(name="x", dim=[N, c, h, w], stride=nhwc(N, c, h, w)[1], data_type=io)
    W = g.tensor(name="w", dim=[k, cg, kh, kw], stride=[cg * kh * kw, 1, kw * cg, cg], data_type=io)
    Y = g.conv_fprop(image=X, weight=W, padding=[pad, pad], stride=[stride, stride],
                     dilation=[1, 1], compute_data_type=compute)
    S = g.tensor(name="scale", dim=[1, k, 1, 1], stride=[k, 1, k, k], data_type=DT.FLOAT)
    B = g.tensor(name="bias", dim=[1, k, 1, 1], stride=[k, 1, k, k], data_type=DT.FLOAT)
    Y = g.bias(input=g.mul(a=Y, b=S), bias=B)
    tensors = {"x": X, "w": W, "scale": S, "bias": B}
    if residual:
        R = g.tensor(name="res", dim=[N, k, ho, wo], stride=nhwc(N, k, ho, wo)[1], data_type=DT.HALF)
        Y = g.add(a=Y, b=R)
        tensors["res"] = R
    if relu:
        Y = g.relu(input=Y)
    if out_type != DT.HALF:  # scaled into the 8-bit output's range
        O = g.tensor(name="out_scale", dim=[1, 1, 1, 1], stride=[1, 1, 1, 1], data_type=DT.FLOAT)
        Y = g.mul(a=Y, b=O)
        tensors["out_scale"] = O
    Y.set_output(True).set_data_type(out_type)
    tensors["y"] = Y
    g.validate()
    return g, tensors, (ho, wo)


def quantized(t, kind):
    """(8-bit tensor, per-tensor scale) of float t."""
    if kind == "fp8":
        scale = float(t.abs().max()) / 448.0
        return (t / scale).to(torch.float8_e4m3fn), scale
    scale = float(t.abs().max()) / 127.0
    return torch.round(t / scale).clamp(-127, 127).to(torch.int8), scale


def timed(fn):
    """ms a call: the median of three runs of grouped_conv_bench's CUDA-event timer."""
    return statistics.median(bench(fn) for _ in range(3))


def probe(handle, key):
    c, k, kh, kw, stride, pad, groups, h, w, relu, residual = key
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.rand(N, c, h, w, device="cuda", generator=gen).to(memory_format=torch.channels_last)
    wt = (torch.randn(k, c // groups, kh, kw, device="cuda", generator=gen) * (2.0 / (c // groups * kh * kw)) ** 0.5)
    wt = wt.to(memory_format=torch.channels_last)
    bias = torch.randn(k, device="cuda", generator=gen) * 0.1
    ref = F.conv2d(x, wt, bias, stride, pad, 1, groups)
    res = None
    if residual:
        res = torch.rand_like(ref).to(memory_format=torch.channels_last)
        ref = ref + res
    if relu:
        ref = F.relu(ref)
    row = {"shape": dict(zip(("C", "K", "kh", "kw", "stride", "pad", "groups", "H", "W", "relu", "residual"), key))}
    xh, wh, bh = x.half(), wt.half(), bias.half()
    rh = res.half().contiguous(memory_format=torch.channels_last) if residual else None
    if residual:
        fp16 = lambda: torch.cudnn_convolution_add_relu(xh, wh, rh, 1.0, bh, [stride] * 2, [pad] * 2, [1, 1], groups)
    elif relu:
        fp16 = lambda: torch.cudnn_convolution_relu(xh, wh, bh, [stride] * 2, [pad] * 2, [1, 1], groups)
    else:
        fp16 = lambda: F.conv2d(xh, wh, bh, stride, pad, 1, groups)
    row["fp16_ms"] = timed(fp16)
    row["fp16_err"] = float((fp16().float() - ref).norm() / ref.norm())
    for kind in ("fp8", "int8"):
        xq, xs = quantized(x, kind)
        per_channel = wt.abs().amax(dim=(1, 2, 3)) / (448.0 if kind == "fp8" else 127.0)
        if kind == "fp8":
            wq = (wt / per_channel[:, None, None, None]).to(torch.float8_e4m3fn)
        else:
            wq = torch.round(wt / per_channel[:, None, None, None]).clamp(-127, 127).to(torch.int8)
        wq = wq.contiguous(memory_format=torch.channels_last)
        # the reference of what the 8-bit conv computes: the quantized inputs in float32
        deq = F.conv2d(xq.float() * xs, wq.float() * per_channel[:, None, None, None], bias, stride, pad, 1, groups)
        if residual:
            deq = deq + rh.float()
        if relu:
            deq = F.relu(deq)
        out_8 = DT.FP8_E4M3 if kind == "fp8" else DT.INT8
        for out_type in (out_8, DT.HALF):
            name = f"{kind}_{'8bit' if out_type != DT.HALF else 'half'}_out"
            try:
                g, t, (ho, wo) = build_graph(handle, kind, key, out_type)
                g.build([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
            except Exception as err:  # not supported: say why, try the next
                row[name] = f"unsupported: {str(err).splitlines()[0][:160]}"
                continue
            ys = float(deq.abs().max()) / (448.0 if kind == "fp8" else 127.0)
            torch_out = {DT.FP8_E4M3: torch.float8_e4m3fn, DT.INT8: torch.int8, DT.HALF: torch.float16}[out_type]
            y = torch.empty(N, k, ho, wo, device="cuda", dtype=torch_out).contiguous(memory_format=torch.channels_last)
            pack = {t["x"]: xq, t["w"]: wq, t["scale"]: (xs * per_channel).float().view(1, k, 1, 1).contiguous(),
                    t["bias"]: bias.float().view(1, k, 1, 1).contiguous(), t["y"]: y}
            if residual:
                pack[t["res"]] = rh
            if "out_scale" in t:
                pack[t["out_scale"]] = torch.full((1, 1, 1, 1), 1.0 / ys, device="cuda")
            workspace = torch.empty(max(1, g.get_workspace_size()), device="cuda", dtype=torch.uint8)
            # raw pointers: the bindings need no DLPack for float8
            ptrs = {tensor: data.data_ptr() for tensor, data in pack.items()}
            run = lambda: g.execute(ptrs, workspace.data_ptr(), handle=handle)
            try:
                ms = timed(run)
            except Exception as err:
                row[name] = f"failed: {str(err).splitlines()[0][:160]}"
                continue
            got = y.float() * (ys if out_type != DT.HALF else 1.0)
            row[name] = {"ms": ms, "err_vs_quantized_ref": float((got - deq).norm() / deq.norm()),
                         "err_vs_fp32": float((got - ref).norm() / ref.norm())}
    return row


def main():
    convs = trunk_convs()
    print(f"{len(convs)} conv shapes, {sum(convs.values())} convs in the trunk", flush=True)
    if CHECK:
        for key in convs:
            for kind in ("fp8", "int8"):
                for out in ((DT.FP8_E4M3 if kind == "fp8" else DT.INT8), DT.HALF):
                    build_graph(None, kind, key, out)
        print("every graph validates")
        return
    handle = cudnn.create_handle()
    cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream().cuda_stream)
    rows, sums = [], Counter()
    for key, count in sorted(convs.items(), key=lambda kv: -kv[0][7] * kv[0][8] * kv[0][1]):
        row = probe(handle, key)
        row["count"] = count
        rows.append(row)
        sums["fp16"] += count * row["fp16_ms"]
        cells = [f"fp16 {row['fp16_ms']:.3f}"]
        for name in ("fp8_8bit_out", "fp8_half_out", "int8_8bit_out", "int8_half_out"):
            v = row.get(name)
            if isinstance(v, dict):
                sums[name] += count * v["ms"]
                cells.append(f"{name} {v['ms']:.3f} (err {v['err_vs_quantized_ref']:.1e})")
            else:
                sums[name + " (unsupported shapes' fp16 instead)"] += count * row["fp16_ms"]
                cells.append(f"{name} {v}")
        print(f"{key} x{count}: " + "; ".join(cells), flush=True)
    print("sums, ms a batch of 32:", {k: round(v, 3) for k, v in sums.items()})
    json.dump({"rows": rows, "sums": sums, "torch": torch.__version__,
               "cudnn": cudnn.backend_version_string(), "device": torch.cuda.get_device_name(0)},
              open(os.path.join(os.environ.get("OUT", "."), "cudnn-trunk-probe.json"), "w"),
              indent=1, default=str)


if __name__ == "__main__":
    main()
