"""The backbone's convolutions with their frozen batch norms folded in, and the ReLU (and a
residual block's add) in the same cuDNN call.

Compiled, the fp16 ResNeXt50 trunk at 800x800 spent a third of its time (~6 of 18 ms a batch
of 32 on an H200) in the element-wise kernels that inductor writes after each cuDNN
convolution: the frozen batch norm, the ReLU and the residual add, each a full read and write
of a large map. Folded and fused (`torch.cudnn_convolution_relu`,
`torch.cudnn_convolution_add_relu`: cuDNN's conv-bias-add-ReLU, or cuBLASLt's bias-ReLU
epilogue for the 1x1s) the same trunk ran in 13.9 ms (benchmarks/gpu-h200.md).

A convolution without a ReLU after it still paid a pass of its own for its bias (the trunk
has 12: the 4 downsample convs and the FPN's 8): ATen's CUDA convolution adds the bias after
cuDNN's call, and where inductor takes the bias out of the call it writes a kernel of its own
for it. A downsample's bias now joins the bias of the block's last conv (the two are summed
before the ReLU anyway), and each FPN conv adds its bias as an op of its own (`ConvThenBias`),
which inductor folds into the element-wise pass after it (the top-down sum, the int8 head's
quantization): the torch-int8 head at batch 32 went from 26.04 to 25.40 ms on the H200
(benchmarks/records/gpu-h200/head-profile-lease7-{old,new}.txt).

cuDNN runs a grouped 3x3 slowly where its groups are narrow: ResNeXt50's (32 groups of 4
input channels in the first stage, 8 in the second) took 0.28-0.49 ms a call at batch 32 on
the H200, fused with bias and ReLU, 24-42 TFLOPS. With the groups merged into groups of 32
channels, each merged group's weight block-diagonal (the original groups' weights on its
diagonal, exact zeros elsewhere: the same sums, 8x and 4x the multiplications), the same calls
took 0.20-0.38 ms, 0.7 ms less a batch over the trunk's seven; the wider groups of the last two
stages ran slower merged (benchmarks/gpu-h200.md, eleventh lease). `merge_narrow_groups` does
it on CUDA only (the CPU pays for the multiplications).

A frozen (or eval-mode) batch norm is an affine map per channel, y = x * s + t with
s = gamma / sqrt(var + eps), t = beta - mean * s, so conv then norm is one convolution with
weight w * s and bias t. The fold is done in float32 before the head is cast to its dtype.
On the CPU (or where cuDNN cannot take the input) the same folded weights run as
conv2d + bias, add, ReLU: the arithmetic the CUDA ops do, tested against the unfused model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops.misc import FrozenBatchNorm2d

NORMS = (FrozenBatchNorm2d, nn.BatchNorm2d)
NARROW_GROUP = 16  # a grouped conv whose groups hold fewer input channels than this ...
MERGED_GROUP = 32  # ... has them merged into groups of this many (merge_narrow_groups)


def fold_batch_norm(conv: nn.Conv2d, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the one convolution that computes norm(conv(x)), in float32 (float64
    for a float64 conv)."""
    if isinstance(norm, nn.BatchNorm2d) and norm.training:
        raise ValueError("a batch norm in training mode has no fixed affine map: call .eval()")
    if not isinstance(norm, NORMS):
        raise TypeError(f"cannot fold {type(norm).__name__} into a convolution")
    dtype = torch.promote_types(conv.weight.dtype, torch.float32)
    ones = torch.ones(conv.out_channels, dtype=dtype, device=conv.weight.device)
    gamma = ones if norm.weight is None else norm.weight.detach().to(dtype)
    beta = 0 * ones if norm.bias is None else norm.bias.detach().to(dtype)
    scale = gamma * torch.rsqrt(norm.running_var.to(dtype) + norm.eps)
    weight = conv.weight.detach().to(dtype) * scale.view(-1, 1, 1, 1)
    bias = beta - norm.running_mean.to(dtype) * scale
    if conv.bias is not None:
        bias = bias + conv.bias.detach().to(dtype) * scale
    return weight, bias


def conv_relu(x, weight, bias, stride, padding, dilation, groups, residual=None):
    """relu(conv2d(x, weight, bias) + residual) in one cuDNN call on CUDA, as three ops
    elsewhere (the same arithmetic)."""
    if x.is_cuda:
        if residual is None:
            return torch.cudnn_convolution_relu(x, weight, bias, stride, padding, dilation, groups)
        return torch.cudnn_convolution_add_relu(
            x, weight, residual, 1.0, bias, stride, padding, dilation, groups
        )
    y = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if residual is not None:
        y = y + residual
    return F.relu(y)


class FoldedConv(nn.Module):
    """A convolution and the batch norm after it as one convolution with a bias, followed by a
    ReLU in the same call when `relu`."""

    def __init__(self, conv: nn.Conv2d, norm: nn.Module, relu: bool):
        super().__init__()
        weight, bias = fold_batch_norm(conv, norm)
        # buffers: .to(dtype) and .to(memory_format=...) apply to them as to parameters
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.relu = relu
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"only zero padding given as numbers folds, not {conv}")

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        args = (self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.relu:
            return conv_relu(x, *args, residual=residual)
        if residual is not None:
            raise ValueError("a residual is added only before a ReLU")
        return F.conv2d(x, *args)


def merged_group_weight(weight: torch.Tensor, groups: int, merged: int) -> torch.Tensor:
    """The weight [out, in/groups, kh, kw] of a conv with `groups` groups as the weight of the
    same conv with `merged` groups (a divisor of `groups`): each merged group's block-diagonal,
    the original groups' weights on its diagonal, zeros elsewhere."""
    if groups % merged:
        raise ValueError(f"{merged} merged groups do not divide {groups} groups")
    out, per = weight.shape[:2]
    out_per, width = out // groups, per * (groups // merged)
    wide = weight.new_zeros(out, width, *weight.shape[2:])
    for group in range(groups):
        rows, column = slice(group * out_per, (group + 1) * out_per), group * per % width
        wide[rows, column : column + per] = weight[rows]
    return wide


@torch.no_grad()
def merge_narrow_groups(module: nn.Module) -> int:
    """Every FoldedConv under `module` whose groups hold fewer than NARROW_GROUP input channels
    takes groups of MERGED_GROUP channels (merged_group_weight), in place; the same
    convolution, which cuDNN runs faster (module docstring). Returns how many."""
    merged = 0
    for conv in module.modules():
        if not isinstance(conv, FoldedConv) or conv.groups == 1:
            continue
        per = conv.weight.shape[1]
        channels = per * conv.groups
        if per < NARROW_GROUP and channels % MERGED_GROUP == 0 and MERGED_GROUP % per == 0:
            groups = channels // MERGED_GROUP
            conv.weight = merged_group_weight(conv.weight, conv.groups, groups)
            conv.groups = groups
            merged += 1
    return merged


class FusedBottleneck(nn.Module):
    """torchvision's Bottleneck (1x1, grouped 3x3, 1x1, add, ReLU) as three fused calls."""

    def __init__(self, block: Bottleneck):
        super().__init__()
        self.conv1 = FoldedConv(block.conv1, block.bn1, relu=True)
        self.conv2 = FoldedConv(block.conv2, block.bn2, relu=True)
        self.conv3 = FoldedConv(block.conv3, block.bn3, relu=True)
        self.downsample = _folded_downsample(block.downsample, self.conv3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.conv3(self.conv2(self.conv1(x)), residual=identity)


class FusedBasicBlock(nn.Module):
    """torchvision's BasicBlock (3x3, 3x3, add, ReLU) as two fused calls."""

    def __init__(self, block: BasicBlock):
        super().__init__()
        self.conv1 = FoldedConv(block.conv1, block.bn1, relu=True)
        self.conv2 = FoldedConv(block.conv2, block.bn2, relu=True)
        self.downsample = _folded_downsample(block.downsample, self.conv2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.conv2(self.conv1(x), residual=identity)


def _folded_downsample(downsample: nn.Module | None, last: FoldedConv) -> FoldedConv | None:
    """The block's downsample folded, its bias moved into the bias of the block's `last` conv
    (relu(conv(x) + b + (d(x) + c)) == relu(conv(x) + (b + c) + d(x))): the downsample then
    runs as a bare cuDNN convolution, without ATen's separate bias pass."""
    if downsample is None:
        return None
    if not (
        isinstance(downsample, nn.Sequential)
        and len(downsample) == 2
        and isinstance(downsample[0], nn.Conv2d)
        and isinstance(downsample[1], NORMS)
    ):
        raise TypeError(f"a block's downsample is not (conv, batch norm): {downsample}")
    folded = FoldedConv(downsample[0], downsample[1], relu=False)
    last.bias += folded.bias
    folded.bias = None
    return folded


class ConvThenBias(nn.Module):
    """A convolution (no ReLU after it) whose bias is added as an op of its own, so that
    torch.compile fuses the add into the element-wise pass that follows; ATen's CUDA
    convolution would add it in a pass of its own, inside the call. The arithmetic of conv2d
    with the bias, up to the rounding of the add."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or conv.bias is None:
            raise ValueError(f"only a zero-padded conv with a bias, padding as numbers: {conv}")
        self.register_buffer("weight", conv.weight.detach().clone())
        self.register_buffer("bias", conv.bias.detach().clone())
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        return y + self.bias.view(1, -1, 1, 1)


def _fuse_in_order(container: nn.Module) -> int:
    """Conv, norm, ReLU children of a container that runs its children in order (Sequential,
    torchvision's IntermediateLayerGetter): the first becomes the FoldedConv, the other two
    nn.Identity (names, and so return_layers, stay). Returns how many were fused."""
    names = list(container._modules)
    fused = 0
    for a, b, c in zip(names, names[1:], names[2:]):
        conv, norm, relu = (container._modules[n] for n in (a, b, c))
        if isinstance(conv, nn.Conv2d) and isinstance(norm, NORMS) and isinstance(relu, nn.ReLU):
            container._modules[a] = FoldedConv(conv, norm, relu=True)
            container._modules[b] = nn.Identity()
            container._modules[c] = nn.Identity()
            fused += 1
    return fused


@torch.no_grad()
def fuse_backbone(module: nn.Module) -> int:
    """Folds and fuses, in place, every residual block and every conv-norm-ReLU run of an
    in-order container under `module` (a HeadMaps' backbone body). Returns the number of
    fused modules; call before casting to the run's dtype (the fold is float32)."""
    fused = 0
    if isinstance(module, (nn.Sequential, IntermediateLayerGetter)):
        fused += _fuse_in_order(module)
    for name, child in list(module.named_children()):
        if isinstance(child, Bottleneck):
            setattr(module, name, FusedBottleneck(child))
            fused += 1
        elif isinstance(child, BasicBlock):
            setattr(module, name, FusedBasicBlock(child))
            fused += 1
        else:
            fused += fuse_backbone(child)
    return fused


def defer_conv_biases(module: nn.Module) -> int:
    """Every nn.Conv2d with a bias under `module` (the FPN: none has a ReLU in the same
    module) becomes a ConvThenBias, in place. Returns how many."""
    deferred = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Conv2d) and child.bias is not None:
            setattr(module, name, ConvThenBias(child))
            deferred += 1
        else:
            deferred += defer_conv_biases(child)
    return deferred
