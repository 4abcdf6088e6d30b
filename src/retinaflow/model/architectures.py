"""The RetinaNet architectures: MLPerf's ResNeXt50-32x4d FPN and a small demo network.

Both are torchvision's RetinaNet (the MLPerf code is a fork of it), so they share the heads,
anchor generator, box coder and post-processing whose outputs this project reproduces.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnext50_32x4d
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.models.resnet import BasicBlock
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

from ..errors import SettingError

ARCHITECTURES = ("resnext50_32x4d_fpn", "demo")
ASPECT_RATIOS = (0.5, 1.0, 2.0)
# MLPerf: x, int(x * 2^(1/3)), int(x * 2^(2/3)) for x in 32..512, one tuple per level P3..P7.
MLPERF_ANCHOR_BASES = (32, 64, 128, 256, 512)
DEMO_ANCHOR_BASES = (16, 32, 64, 128, 256)


def anchor_sizes(bases: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    return tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in bases)


def anchor_generator(arch: str) -> AnchorGenerator:
    bases = MLPERF_ANCHOR_BASES if arch == "resnext50_32x4d_fpn" else DEMO_ANCHOR_BASES
    sizes = anchor_sizes(bases)
    return AnchorGenerator(sizes, (ASPECT_RATIOS,) * len(sizes))


def _mlperf_backbone() -> nn.Module:
    """ResNeXt50-32x4d with FrozenBatchNorm, FPN over C3-C5 (256 channels), P6/P7 from P5."""
    body = resnext50_32x4d(weights=None, norm_layer=FrozenBatchNorm2d)
    return _resnet_fpn_extractor(
        body, trainable_layers=5, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)
    )


class _TinyResNet(nn.Module):
    """A four-stage residual network of BasicBlocks (strides 4, 8, 16, 32), ~1 M parameters."""

    def __init__(self, widths=(32, 64, 128, 192)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(widths[0], widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, in_ch = [], widths[0]
        for i, out_ch in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or in_ch != out_ch:
                down = nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
                )
            stages.append(
                nn.Sequential(BasicBlock(in_ch, out_ch, stride, down), BasicBlock(out_ch, out_ch))
            )
            in_ch = out_ch
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def _demo_backbone(fpn_channels: int = 64) -> nn.Module:
    body = _TinyResNet()
    return BackboneWithFPN(
        body,
        return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=[64, 128, 192],
        out_channels=fpn_channels,
        extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels),
    )


def build_retinanet(arch: str, num_classes: int, image_size: int) -> RetinaNet:
    """A RetinaNet with MLPerf's thresholds (score 0.05, top-1000 per level, NMS 0.5, 300
    detections) for square inputs of `image_size`; weights are random until loaded."""
    if arch == "resnext50_32x4d_fpn":
        backbone = _mlperf_backbone()
    elif arch == "demo":
        backbone = _demo_backbone()
    else:
        raise SettingError("arch", arch, f"one of {', '.join(ARCHITECTURES)}")
    return RetinaNet(
        backbone,
        num_classes=num_classes,
        min_size=image_size,
        max_size=image_size,
        anchor_generator=anchor_generator(arch),
        score_thresh=0.05,
        nms_thresh=0.5,
        detections_per_img=300,
        topk_candidates=1000,
    )
