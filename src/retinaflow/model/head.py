"""The truncated forward: what an accelerator without post-processing support runs.

Normalisation, backbone, FPN and the two heads, returning the raw per-level maps: 5 class maps
[N, A*K, H_l, W_l] and 5 box maps [N, A*4, H_l, W_l]. Anchors, decoding and NMS run on the host.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.retinanet import RetinaNet

NUM_LEVELS = 5
CLASS_MAP_NAMES = tuple(f"cls_logits_p{level}" for level in range(3, 3 + NUM_LEVELS))
BOX_MAP_NAMES = tuple(f"bbox_regression_p{level}" for level in range(3, 3 + NUM_LEVELS))
OUTPUT_NAMES = CLASS_MAP_NAMES + BOX_MAP_NAMES
INPUT_NAME = "images"


class HeadMaps(nn.Module):
    """images in [0,1], NCHW -> (5 class maps, 5 box maps), in the order of OUTPUT_NAMES."""

    def __init__(self, model: RetinaNet):
        super().__init__()
        self.backbone = model.backbone
        self.classification_head = model.head.classification_head
        self.regression_head = model.head.regression_head
        mean = torch.tensor(model.transform.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(model.transform.image_std).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The FPN's levels P3..P7 of the normalised images: what both heads read."""
        return list(self.backbone((images - self.mean) / self.std).values())

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.features(images)
        cls_head, box_head = self.classification_head, self.regression_head
        class_maps = [cls_head.cls_logits(cls_head.conv(f)) for f in features]
        box_maps = [box_head.bbox_reg(box_head.conv(f)) for f in features]
        return (*class_maps, *box_maps)
