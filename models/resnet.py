"""ResNet patch classifiers in plain torch, with torchvision's parameter names.

Published landfill classifiers (e.g. on AerialWaste) fine-tune ResNet backbones; the module
names here match ``torchvision.models.resnet`` so such a ``state_dict`` loads as it is
(``torch.load(path, weights_only=True)``; torchvision itself is not needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from .layers import constructor_args

__all__ = ["BasicBlock", "Bottleneck", "ResNetClassifier"]


def _shortcut(
    x: torch.Tensor, out: torch.Tensor, downsample: nn.Module | None, shift: int
) -> torch.Tensor:
    """The identity path, shifted and cropped to line up with an unpadded residual path."""
    if shift:
        x = x[..., shift:, shift:]
    identity = x if downsample is None else downsample(x)
    if shift:
        identity = identity[..., : out.shape[-2], : out.shape[-1]]
    return identity


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions and a shortcut. Unpadded (``padding=0``), the shortcut takes the
    pixels the residual path is centred on, so the block stays exactly translation-equivariant."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        padding: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        # unpadded, output k of the residual path is centred on input pixel stride * (k + 1) + 1
        self.shift = 0 if padding else stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + _shortcut(x, out, self.downsample, self.shift))


class Bottleneck(nn.Module):
    """1 x 1, 3 x 3 (strided), 1 x 1 convolutions and a shortcut (ResNet-50 and deeper)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        padding: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.shift = 0 if padding else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + _shortcut(x, out, self.downsample, self.shift))


class ResNetClassifier(nn.Module):
    """ResNet-18/34/50-style patch classifier ending in global average pooling and ``fc``.

    Args:
        in_channels: input bands.
        num_classes: output classes.
        patch_size: the patch it is trained on (used when it is convolutionalized).
        layers: blocks per stage (``(2, 2, 2, 2)`` is ResNet-18, ``(3, 4, 6, 3)`` ResNet-34/50).
        block: ``"basic"`` or ``"bottleneck"`` (ResNet-50 and deeper).
        width: channels of the stem (64 in torchvision).
        stem_pool: the 3 x 3 max pool after the stem (torchvision has it).
        padded: padded convolutions as in torchvision (default). ``False`` builds the
            "valid" variant, whose receptive field is exactly the patch: convolutionalized, its
            heatmap equals the classifier on every patch.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        patch_size: int = 224,
        layers: Sequence[int] = (2, 2, 2, 2),
        block: Literal["basic", "bottleneck"] = "basic",
        width: int = 64,
        stem_pool: bool = True,
        padded: bool = True,
    ) -> None:
        super().__init__()
        self.arch_args = constructor_args(locals())
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.patch_size = patch_size
        cls = BasicBlock if block == "basic" else Bottleneck
        self.padding = 1 if padded else 0
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3 * self.padding, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, self.padding) if stem_pool else nn.Identity()
        self.inplanes = width
        stages = []
        for i, n in enumerate(layers):
            stages.append(self._stage(cls, width * 2**i, n, 1 if i == 0 else 2))
        self.layer1, self.layer2, self.layer3, self.layer4 = (stages + [nn.Identity()] * 4)[:4]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _stage(
        self, cls: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * cls.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * cls.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * cls.expansion),
            )
        layers: list[nn.Module] = [cls(self.inplanes, planes, stride, downsample, self.padding)]
        self.inplanes = planes * cls.expansion
        layers += [cls(self.inplanes, planes, padding=self.padding) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
