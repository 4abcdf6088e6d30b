"""The int8 GPU head (variant torch-int8): backbone and FPN in PyTorch (fp16 on the GPU), both
heads' convolutions and the FPN's lower output convs in int8 on the tensor cores
(retinaflow.triton_conv).

The heads hold most of RetinaNet's arithmetic (at 800x800 about 270 of ~340 GFLOPs an image:
eight 256->256 3x3 convs and the 256->A*K class conv on five levels, P3 the largest), so they
are what int8 speeds up. The FPN's 3x3 output convs (its layer blocks) are the same
256->256 stride-1 3x3, where cuDNN's fp16 took twice the int8 kernel's time (0.69 against
0.32-0.35 ms at P3, batch 32, H200): they run in int8 too, but for the FPN's top level, whose
float output P6 and P7 read (int8_fpn_levels), their output quantized straight into the
heads' input (the head 21.11 -> 20.87 ms, the demo's mAP inside the 99% gate:
benchmarks/gpu-h200.md, thirteenth lease). Calibration runs the float network on the
calibration images and keeps the largest |value| of every tensor the kernel quantizes: those
FPN convs' input (the top-down sum), each level's FPN output (both towers' input) and each
tower conv's ReLU output, per level (the weights are shared by the levels, the activations'
ranges are not). Weights are int8 per output channel; activations
per tensor, symmetric ("max" calibration, the int8 builds' default method).

The build (`store_int8_build`) is one file, as a TVM build is: the checkpoint's state dict and
the calibrated ranges.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from .. import triton_conv
from ..io import atomic_path
from .architectures import build_retinanet
from .head import NUM_LEVELS, HeadMaps

BUILD_FORMAT = "retinaflow-torch-int8/2"  # /2: the FPN convs' input ranges
TOWERS = (("cls", "classification_head", "cls_logits"), ("box", "regression_head", "bbox_reg"))
FIRST_LEVEL = 3  # P3
MIN_AMAX = 1e-6  # an all-zero tensor still gets a finite scale (its values quantize to 0)


def tower_convs(head: HeadMaps) -> dict[str, tuple[list[nn.Conv2d], nn.Conv2d]]:
    """{cls, box: (the tower's ReLU convs, its final conv)}, torchvision's RetinaNet heads."""
    towers = {}
    for short, name, final in TOWERS:
        module = getattr(head, name)
        towers[short] = ([block[0] for block in module.conv], getattr(module, final))
    return towers


def int8_fpn_levels(head: HeadMaps) -> list[int]:
    """The levels whose FPN output conv (layer block) runs in int8: every one but the FPN's
    top level, whose float output the extra blocks (P6, P7) read."""
    return list(range(len(head.backbone.fpn.layer_blocks) - 1))


def fpn_conv(head: HeadMaps, level: int) -> nn.Conv2d:
    """The FPN's output conv of `level` (torchvision's layer block: a Conv2d in a Sequential)."""
    block = head.backbone.fpn.layer_blocks[level]
    if isinstance(block, nn.Conv2d):
        return block
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != 1 or len(list(block.children())) != 1:
        raise ValueError(f"the FPN's level {level} output is not a lone convolution: {block}")
    return convs[0]


def input_name(level: int) -> str:
    return f"p{FIRST_LEVEL + level}.input"


def fpn_input_name(level: int) -> str:
    return f"p{FIRST_LEVEL + level}.fpn_input"


def output_name(level: int, tower: str, index: int) -> str:
    return f"p{FIRST_LEVEL + level}.{tower}{index}"


@torch.inference_mode()
def calibrate(head: HeadMaps, batches: Iterable[torch.Tensor]) -> dict[str, float]:
    """{tensor name: largest |value| over the batches} for every tensor the int8 head
    quantizes, from the float head (float32) on the batches' device."""
    head = head.eval()
    towers = tower_convs(head)
    amax: dict[str, float] = {}

    def keep(name, x):
        amax[name] = max(amax.get(name, 0.0), float(x.abs().max()))

    def fpn_input_kept(level):
        return lambda module, args: keep(fpn_input_name(level), args[0])

    blocks = head.backbone.fpn.layer_blocks
    hooks = [
        blocks[level].register_forward_pre_hook(fpn_input_kept(level))
        for level in int8_fpn_levels(head)
    ]
    try:
        for images in batches:
            for level, feature in enumerate(head.features(images)):
                keep(input_name(level), feature)
                for tower, (convs, _) in towers.items():
                    x = feature
                    for index, conv in enumerate(convs):
                        x = torch.relu(conv(x))
                        keep(output_name(level, tower, index), x)
    finally:
        for hook in hooks:
            hook.remove()
    return amax


def expected_names(head: HeadMaps) -> list[str]:
    """The tensor names calibration gives for this head."""
    names, towers = [fpn_input_name(level) for level in int8_fpn_levels(head)], tower_convs(head)
    for level in range(NUM_LEVELS):
        names.append(input_name(level))
        for tower, (convs, _) in towers.items():
            names += [output_name(level, tower, i) for i in range(len(convs))]
    return names


@dataclass
class _QuantizedConv:
    weight: torch.Tensor  # [OC, 9*C] int8
    weight_scale: torch.Tensor  # [OC] float32
    bias: torch.Tensor  # [OC] float32

    def to(self, device) -> _QuantizedConv:
        return _QuantizedConv(*(t.to(device) for t in (self.weight, self.weight_scale, self.bias)))


class Int8Head(nn.Module):
    """images in [0,1], NCHW -> the 10 maps of HeadMaps, float16: the float trunk (a copy of
    the head given, in whatever dtype the module is cast to) up to the FPN's int8 levels'
    top-down sums, then their FPN output convs and both heads in int8. The maps are
    NCHW-shaped views of the interior of padded NHWC buffers (the kernel's output layout,
    read in place by the device post-processing; `.contiguous()` makes a dense copy)."""

    def __init__(self, head: HeadMaps, activation_amax: dict[str, float]):
        super().__init__()
        missing = sorted(set(expected_names(head)) - set(activation_amax))
        if missing:
            raise ValueError(f"the int8 head's calibration lacks {len(missing)}: {missing[:3]}")
        self.fpn_levels = int8_fpn_levels(head)
        # the FPN convs run here: in the trunk's copy their layer blocks hand the sum on
        self.fpn_quantized = {
            level: self._quantize(fpn_conv(head, level)) for level in self.fpn_levels
        }
        self.trunk = copy.deepcopy(head)
        for level in self.fpn_levels:
            self.trunk.backbone.fpn.layer_blocks[level] = nn.Identity()
        self.scales = {
            k: max(float(v), MIN_AMAX) / triton_conv.INT8_MAX for k, v in activation_amax.items()
        }
        self.quantized = {}  # tower -> (ReLU convs, final), on the CPU; float32 epilogues
        for tower, (convs, final) in tower_convs(head).items():
            self.quantized[tower] = [self._quantize(c) for c in (*convs, final)]
        self._placed: dict[torch.device, dict] = {}  # device -> its copies, made once
        # on CUDA, each (level, tower) chain of convolutions on a stream of its own (heads()):
        # on the H200 at batch 32 the head 22.78 -> 22.35 and 22.99 -> 22.51 ms, the maps
        # equal (benchmarks/gpu-h200.md, tenth lease: scripts/lease10_chains.py)
        self.concurrent = True

    def _quantize(self, conv: nn.Conv2d) -> _QuantizedConv:
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1):
            raise ValueError(f"the int8 kernel runs stride-1 3x3 same convs, not {conv}")
        weight, scale = triton_conv.quantize_weight(conv.weight)
        bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(len(scale))
        return _QuantizedConv(weight, scale, bias.contiguous())

    def _on(self, device: torch.device) -> dict:
        """The quantized weights and each conv's combined scale per level, on `device`."""
        if device not in self._placed:
            placed = {}
            for tower, convs in self.quantized.items():
                moved = [c.to(device) for c in convs]
                for level in range(NUM_LEVELS):
                    scale = self.scales[input_name(level)]
                    layers = []
                    for index, conv in enumerate(moved):
                        relu = index < len(moved) - 1
                        out = self.scales[output_name(level, tower, index)] if relu else None
                        combined = (conv.weight_scale * scale).contiguous()
                        layers.append((conv.weight, combined, conv.bias, relu, out))
                        scale = out
                    placed[tower, level] = layers
            for level, conv in self.fpn_quantized.items():
                conv = conv.to(device)
                combined = (conv.weight_scale * self.scales[fpn_input_name(level)]).contiguous()
                out = self.scales[input_name(level)]
                placed["fpn", level] = (conv.weight, combined, conv.bias, False, out)
            self._placed[device] = placed
        return self._placed[device]

    def packed_features(self, images: torch.Tensor) -> list[tuple[torch.Tensor, tuple]]:
        """What the float trunk hands the int8 convs (compiled as one, see compiled()): each
        level's FPN output, or at the int8 FPN levels the sum their FPN conv reads, quantized
        into a padded flat int8 buffer, with its (N, H, W)."""
        packed = []
        for level, feature in enumerate(self.trunk.features(images)):
            n, _, height, width = feature.shape
            shape = triton_conv.PaddedShape(n, height, width)
            name = fpn_input_name(level) if level in self.fpn_levels else input_name(level)
            packed.append(
                (shape.pack(feature.permute(0, 2, 3, 1), self.scales[name]), (n, height, width))
            )
        return packed

    def fpn_outputs(
        self, packed: Sequence[tuple[torch.Tensor, tuple]]
    ) -> list[tuple[torch.Tensor, tuple]]:
        """packed_features' levels -> each level's FPN output as the heads' int8 input: the
        int8 FPN levels' output convs run here, the other levels pass as they are."""
        placed = self._on(packed[0][0].device)
        levels = []
        for level, (buffer, size) in enumerate(packed):
            if level in self.fpn_levels:  # (weight, scale, bias, relu, out scale), as _on gives
                shape = triton_conv.PaddedShape(*size)
                buffer = triton_conv.conv3x3(buffer, shape, *placed["fpn", level])
            levels.append((buffer, size))
        return levels

    def heads(self, packed: Sequence[tuple[torch.Tensor, tuple]]) -> tuple[torch.Tensor, ...]:
        """packed_features' levels -> (5 class maps, 5 box maps): the int8 FPN convs
        (fpn_outputs), then both heads in int8. A (level, tower) pair is then a chain of five
        convolutions that needs no other: on CUDA, with
        `concurrent`, each chain runs on a stream of its own (in a CUDA graph: a branch), so
        that the small levels' tiles fill the multiprocessors the large levels' leave idle
        (at batch 32 P7's 256->256 conv is 42 tiles for the H200's 132; P5-P7 took 0.9 ms of
        the heads' 8.6 run one after another)."""
        packed = self.fpn_outputs(packed)
        device = packed[0][0].device
        placed = self._on(device)
        chains = [(tower, level) for tower in self.quantized for level in range(len(packed))]
        maps = {}
        forked = self.concurrent and device.type == "cuda"
        with _forked(device, len(chains), forked) as streams:
            for (tower, level), stream in zip(chains, streams, strict=True):
                buffer, size = packed[level]
                with stream:
                    x = buffer
                    shape = triton_conv.PaddedShape(*size)
                    for weight, scale, bias, relu, out in placed[tower, level]:
                        x = triton_conv.conv3x3(x, shape, weight, scale, bias, relu, out)
                    maps[tower, level] = x.permute(0, 3, 1, 2)
        if forked and not torch.cuda.is_current_stream_capturing():
            current = torch.cuda.current_stream(device)
            for m in maps.values():  # a side stream's memory: not reused before these reads
                m.record_stream(current)
        return tuple(maps[chain] for chain in chains)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.heads(self.packed_features(images))

    def compiled(self, mode: str | None):
        """This forward with the float trunk and the quantization of its levels under
        torch.compile (one fused pass a level; the int8 kernels are Triton already): what the
        PyTorch runner compiles instead of the whole module."""
        packed_features = torch.compile(self.packed_features, mode=mode, dynamic=False)
        return lambda images: self.heads(packed_features(images))


_streams = threading.local()  # per thread: device -> side streams for heads()' chains


@contextmanager
def _forked(
    device: torch.device, count: int, enabled: bool
) -> Iterator[list[AbstractContextManager]]:
    """`count` contexts, each for one chain of work: `enabled` (CUDA `device` only), side
    streams that start after the current stream's work so far and that the current stream
    waits for at the end (a fork and a join, what CUDA graph capture allows); else no-ops."""
    if not enabled:
        yield [nullcontext()] * count
        return
    pool = getattr(_streams, "by_device", None)
    if pool is None:
        pool = _streams.by_device = {}
    streams = pool.setdefault(device, [])
    streams += [torch.cuda.Stream(device) for _ in range(count - len(streams))]
    current = torch.cuda.current_stream(device)
    for stream in streams[:count]:
        stream.wait_stream(current)
    yield [torch.cuda.stream(stream) for stream in streams[:count]]
    for stream in streams[:count]:
        current.wait_stream(stream)


def calibrate_images(
    weights: str | os.PathLike,
    images: Sequence[str | os.PathLike],
    model: dict,
    resize_kernel: str,
    device: str,
    batch_size: int,
) -> dict[str, float]:
    """calibrate() over image files, preprocessed as inference preprocesses them, with the
    float32 network of the checkpoint `weights` (`model`: arch, num_classes, image_size) on
    `device`; a progress bar counts the images."""
    from tqdm import tqdm

    from ..data.images import iter_batches
    from ..runtime.torch_runner import torch_device
    from .loading import load_head

    target = torch_device(device)
    head = load_head(weights, **model).to(target)
    size = (model["image_size"], model["image_size"])
    bar = tqdm(total=len(images), desc="int8 calibration", unit="img", mininterval=5)

    def batches():
        for batch in iter_batches(list(images), size, resize_kernel, batch_size):
            yield torch.from_numpy(batch).to(target)
            bar.update(len(batch))

    with bar:
        return calibrate(head, batches())


def store_int8_build(
    weights: str | os.PathLike,
    activation_amax: dict[str, float],
    dst: str | os.PathLike,
    record: dict,
) -> None:
    """The torch-int8 build: the stored checkpoint's state dict and the calibrated ranges."""
    build = {
        "format": BUILD_FORMAT,
        "state_dict": torch.load(weights, map_location="cpu", weights_only=True),
        "activation_amax": dict(sorted(activation_amax.items())),
        "record": record,
    }
    with atomic_path(dst) as tmp, open(tmp, "wb") as f:
        torch.save(build, f)


def load_int8_head(path: str | os.PathLike, arch: str, num_classes: int, image_size: int):
    """The Int8Head of a torch-int8 build, its trunk in float32 (the runner casts it)."""
    build = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(build, dict) or build.get("format") != BUILD_FORMAT:
        raise ValueError(f"{path} is not a torch-int8 build ({BUILD_FORMAT}): rebuild it")
    model = build_retinanet(arch, num_classes, image_size)
    model.load_state_dict(build["state_dict"])
    return Int8Head(HeadMaps(model).eval(), build["activation_amax"])
