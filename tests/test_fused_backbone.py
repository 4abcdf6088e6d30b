"""model/fused_backbone: the backbone with its batch norms folded into the convolutions and
the ReLUs (and residual adds) fused gives the unfused backbone's features. On the CPU the
fused modules run conv2d + bias, add, ReLU (on CUDA the same arithmetic in one cuDNN call,
measured on the H200: benchmarks/gpu-h200.md)."""

import copy

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from retinaflow.model.architectures import build_retinanet
from retinaflow.model.fused_backbone import (
    NORMS,
    ConvThenBias,
    FoldedConv,
    FusedBasicBlock,
    FusedBottleneck,
    defer_conv_biases,
    fold_batch_norm,
    fuse_backbone,
    merge_narrow_groups,
    merged_group_weight,
)
from retinaflow.model.head import HeadMaps
from retinaflow.runtime.torch_runner import (
    TorchOptions,
    TorchRunner,
    fusion_decision,
    merges_groups,
)


def unfused_norms(module: nn.Module) -> list[str]:
    """Names of the batch norms left in `module`."""
    return [name for name, m in module.named_modules() if isinstance(m, NORMS)]


def randomise_norms(module: nn.Module, seed: int) -> None:
    """Batch-norm statistics far from the identity (a fresh model's are mean 0, var 1, gamma
    1, beta 0: a fold that forgot a term would pass on them)."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)):
            n = m.running_var.numel()
            m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)


def trunk(arch: str, seed: int) -> HeadMaps:
    torch.manual_seed(seed)
    head = HeadMaps(build_retinanet(arch, 6, 64)).eval()
    with torch.no_grad():
        randomise_norms(head, seed)
    return head.double()


# (arch, residual blocks + conv-norm-ReLU runs): ResNeXt50 has 3+4+6+3 Bottlenecks and the
# stem; the demo's tiny ResNet 4 stages of 2 BasicBlocks and a stem of two runs
CASES = [("resnext50_32x4d_fpn", FusedBottleneck, 16 + 1), ("demo", FusedBasicBlock, 8 + 2)]


@pytest.mark.parametrize("arch, block, expected", CASES)
def test_fused_backbone_gives_the_unfused_features(arch, block, expected):
    """float64, so that what differs is the arithmetic's order only: (x*w)*s against x*(w*s)
    and the bias added in the conv. Each is a rounding of ~1e-16 relative, and ~50 layers
    compound it to far below the 1e-10 asked; a fold that drops or misplaces a term (the
    mean, eps, the conv's bias, the residual) is off by the statistics' size, ~0.1."""
    head = trunk(arch, seed=3)
    with torch.no_grad():  # the FPN's biases, zero in a fresh model, made to count
        for m in head.backbone.fpn.modules():
            if isinstance(m, nn.Conv2d):
                m.bias.uniform_(-0.2, 0.2, generator=torch.Generator().manual_seed(7))
    fused = copy.deepcopy(head)
    assert fuse_backbone(fused.backbone.body) == expected
    assert unfused_norms(fused.backbone.body) == []
    assert sum(isinstance(m, block) for m in fused.modules()) == expected - (
        1 if arch != "demo" else 2
    )
    # the downsamples' biases moved into their blocks' last convs (a misplaced one would be
    # off by the statistics' size, as above)
    downsamples = [m.downsample for m in fused.modules() if isinstance(m, block)]
    biases = [d.bias for d in downsamples if d is not None]
    assert biases == [None] * (3 if arch == "demo" else 4)  # one a stage after the first
    # the FPN's 8 convs (3 lateral 1x1, 3 output 3x3, P6, P7) add their biases after
    assert defer_conv_biases(fused.backbone.fpn) == 8
    assert not any(type(m) is nn.Conv2d for m in fused.backbone.modules())
    images = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(4)).double()
    with torch.inference_mode():
        want, got = head.features(images), fused.features(images)
    for w, g in zip(want, got, strict=True):
        assert w.shape == g.shape
        assert ((w - g).norm() / w.norm()).item() < 1e-10


def test_merged_groups_give_the_grouped_features():
    """ResNeXt50's grouped 3x3s with groups of fewer than 16 channels (stages 1 and 2: 4 and 8
    a group, 3 + 4 blocks) take groups of 32 with block-diagonal weights: the same products,
    the added ones exact zeros, so in float64 only the sums' order can differ (~1e-16 relative
    an add; the 1e-10 asked leaves room over ~50 layers). A weight put in the wrong block or
    column would mix channels of other groups in: off by the features' size."""
    head = trunk("resnext50_32x4d_fpn", seed=8)
    fused = copy.deepcopy(head)
    fuse_backbone(fused.backbone.body)
    merged = copy.deepcopy(fused)
    assert merge_narrow_groups(merged.backbone.body) == 3 + 4
    groups = sorted({m.groups for m in merged.modules() if isinstance(m, FoldedConv)})
    assert groups == [1, 4, 8, 32]  # stage 1: 128 channels / 32, stage 2: 256 / 32; 3, 4 kept
    assert merge_narrow_groups(merged.backbone.body) == 0  # merged once only
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(9)).double()
    with torch.inference_mode():
        want, got = fused.features(images), merged.features(images)
    for w, g in zip(want, got, strict=True):
        assert ((w - g).norm() / w.norm()).item() < 1e-10


def test_a_merged_group_weight_is_block_diagonal():
    """8 groups of 2 input and 3 output channels as 2 groups: output channel o (group o // 3)
    reads input channels 2 * (o // 3) .. + 2 of its merged group's 8, nothing else; and the
    convolution is the grouped one (float64)."""
    weight = torch.randn(24, 2, 3, 3, dtype=torch.float64)
    wide = merged_group_weight(weight, 8, 2)
    assert wide.shape == (24, 8, 3, 3)
    for o in range(24):
        column = 2 * (o // 3) % 8
        assert torch.equal(wide[o, column : column + 2], weight[o])
        assert int(wide[o].ne(0).sum()) == int(weight[o].ne(0).sum())  # zeros elsewhere
    x = torch.randn(1, 16, 7, 7, dtype=torch.float64)
    grouped = torch.nn.functional.conv2d(x, weight, None, 1, 1, 1, 8)
    assert torch.allclose(torch.nn.functional.conv2d(x, wide, None, 1, 1, 1, 2), grouped)
    with pytest.raises(ValueError, match="3 merged groups do not divide 8 groups"):
        merged_group_weight(weight, 8, 3)


@pytest.mark.parametrize(
    "device, fused, expected",
    [("cuda", True, True), ("cuda:1", True, True), ("cuda", False, False), ("cpu", True, False)],
)
def test_narrow_groups_merge_on_cuda_only(device, fused, expected):
    """The runner merges the fused trunk's narrow groups where cuDNN runs them faster (CUDA);
    the CPU would pay for the extra multiplications (8x on stage 1), and an unfused trunk has
    no FoldedConv to merge."""
    assert merges_groups(device, fused) is expected


def test_a_conv_bias_and_batch_norm_fold_into_one_conv():
    """A conv with its own bias (none in torchvision's ResNets, but foldable) and an eval-mode
    BatchNorm2d: norm(conv(x)) == the folded conv, and the ReLU after it in the same module."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=True).double()
    norm = nn.BatchNorm2d(6).double().eval()
    with torch.no_grad():
        randomise_norms(norm, seed=1)
    x = torch.randn(1, 4, 9, 9, dtype=torch.float64)
    folded = FoldedConv(conv, norm, relu=True).double()
    with torch.no_grad():
        want = torch.relu(norm(conv(x)))
        assert torch.allclose(folded(x), want, rtol=1e-12, atol=1e-12)
        residual = torch.randn_like(want)
        assert torch.allclose(
            folded(x, residual=residual), torch.relu(norm(conv(x)) + residual), atol=1e-12
        )


def test_a_conv_with_its_bias_after_is_the_conv():
    """ConvThenBias: conv2d without the bias, then the bias added, is conv2d with it (float64:
    only the add's rounding differs, ~1e-16), strided, padded and grouped alike."""
    torch.manual_seed(0)
    for conv in (nn.Conv2d(4, 6, 3, 2, 1), nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 3, 1, 1, groups=4)):
        conv = conv.double()
        x = torch.randn(2, conv.in_channels, 9, 7, dtype=torch.float64)
        with torch.no_grad():
            conv.bias.uniform_(-1, 1)
            assert torch.allclose(ConvThenBias(conv)(x), conv(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="with a bias"):
        ConvThenBias(nn.Conv2d(2, 2, 1, bias=False))


def test_what_cannot_fold_is_refused_by_name():
    conv = nn.Conv2d(2, 2, 1)
    with pytest.raises(ValueError, match="training mode"):
        fold_batch_norm(conv, nn.BatchNorm2d(2).train())
    with pytest.raises(TypeError, match="GroupNorm"):
        fold_batch_norm(conv, nn.GroupNorm(1, 2))
    with pytest.raises(ValueError, match="residual is added only before a ReLU"):
        FoldedConv(conv, nn.BatchNorm2d(2).eval(), relu=False)(
            torch.zeros(1, 2, 3, 3), residual=torch.zeros(1, 2, 3, 3)
        )


def test_the_runner_fuses_when_asked_and_records_it():
    """TorchRunner with fuse_batch_norm: the trunk fused before the cast (float32 fold), the
    maps those of the unfused head to float32 rounding (~1e-7 a layer, the margin 1e-4 covers
    ~50 layers' compounding with room), and the option in the runner's record."""
    head = trunk("demo", seed=5).float()
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(6)).numpy()
    plain = TorchRunner(copy.deepcopy(head), 1, "cpu")
    fused = TorchRunner(copy.deepcopy(head), 1, "cpu", TorchOptions(fuse_batch_norm=True))
    # 10 folded (the blocks and the stem's runs) and the FPN's 8 convs' biases deferred
    assert plain.fused_modules == 0 and fused.fused_modules == 10 + 8
    record = fused.settings()
    assert record["fuse_batch_norm"] is True and record["fused_modules"] == 10 + 8
    assert record["merged_groups"] == 0  # the CPU: merges_groups
    assert plain.settings()["fuse_batch_norm"] is False
    for want, got in zip(plain(images), fused(images), strict=True):
        assert abs(want - got).max() / abs(want).max() < 1e-4


@pytest.mark.parametrize(
    "device, deterministic, expected",
    [("cuda", False, True), ("cuda:1", False, True), ("cuda", True, False), ("cpu", True, True)],
)
def test_deterministic_gpu_runs_stay_unfused(device, deterministic, expected):
    """PyTorch's fused cuDNN calls pass cuDNN deterministic=false whatever the flag: a run that
    asks for the same maps in every process (GPU shards gathered byte for byte) keeps the
    plain convolutions, and says why; the CPU's convolutions do not depend on the flag."""
    options = TorchOptions(fuse_batch_norm=True, deterministic=deterministic)
    fused, reason = fusion_decision(device, options)
    assert fused is expected
    assert reason == "on" if expected else "deterministic" in reason
    assert fusion_decision(device, TorchOptions()) == (False, "off (fuse_batch_norm is false)")
