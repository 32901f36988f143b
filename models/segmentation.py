"""Segmentation networks trained on whole images: FCN-32s/16s/8s and U-Net.

Both take any input size and return logits at the same height and width: the input is padded
at the bottom and right to a multiple of the network's downsampling factor (``align``) and the
output cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from .layers import constructor_args

__all__ = ["FCN", "FCN8s", "FCN16s", "FCN32s", "UNet", "bilinear_kernel"]


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weights (channels, channels, k, k) of a transposed convolution that upsamples each
    channel bilinearly (as in Long et al., FCN)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    kernel = (filt[:, None] * filt[None, :]).float()
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    for c in range(channels):
        weight[c, c] = kernel
    return weight


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)) if ph or pw else x


def _conv_block(cin: int, cout: int, n: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FCN(nn.Module):
    """Fully convolutional network (Long, Shelhamer, Darrell) on a VGG-style backbone.

    Five stages of padded 3 x 3 convolutions and 2 x 2 max pooling (total stride 32), ``fc6``
    and ``fc7`` as convolutions, a class-score layer, then upsampling by transposed convolutions
    initialised to bilinear interpolation: ``"32s"`` in one x32 step, ``"16s"`` fusing the
    pool4 scores, ``"8s"`` also fusing the pool3 scores.

    Args:
        in_channels: input bands.
        num_classes: output classes.
        variant: ``"32s"``, ``"16s"`` or ``"8s"``.
        widths: channels of the five stages.
        convs: convolutions per stage.
        fc_width: channels of fc6/fc7.
        batch_norm: BatchNorm after every convolution.
    """

    align = 32
    output_stride = 1
    offset = 0

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        variant: Literal["32s", "16s", "8s"] = "8s",
        widths: Sequence[int] = (16, 32, 64, 128, 128),
        convs: Sequence[int] = (2, 2, 3, 3, 3),
        fc_width: int = 256,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.arch_args = constructor_args(locals())
        if type(self) is not FCN:  # FCN32s/16s/8s fix the variant themselves
            del self.arch_args["variant"]
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"variant must be 32s, 16s or 8s, not {variant!r}")
        self.in_channels, self.num_classes, self.variant = in_channels, num_classes, variant
        prev = in_channels
        stages = []
        for width, n in zip(widths, convs, strict=True):
            stages.append(nn.Sequential(_conv_block(prev, width, n, batch_norm), nn.MaxPool2d(2)))
            prev = width
        self.stage1, self.stage2, self.stage3, self.stage4, self.stage5 = stages
        self.fc = nn.Sequential(
            nn.Conv2d(prev, fc_width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.5),
            nn.Conv2d(fc_width, fc_width, 1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.5),
        )
        self.score_fr = nn.Conv2d(fc_width, num_classes, 1)
        k = num_classes
        if variant == "32s":
            self.up_final = nn.ConvTranspose2d(k, k, 64, stride=32, padding=16, bias=False)
        else:
            self.score_pool4 = nn.Conv2d(widths[3], k, 1)
            self.up2 = nn.ConvTranspose2d(k, k, 4, stride=2, padding=1, bias=False)
            if variant == "16s":
                self.up_final = nn.ConvTranspose2d(k, k, 32, stride=16, padding=8, bias=False)
            else:
                self.score_pool3 = nn.Conv2d(widths[2], k, 1)
                self.up2b = nn.ConvTranspose2d(k, k, 4, stride=2, padding=1, bias=False)
                self.up_final = nn.ConvTranspose2d(k, k, 16, stride=8, padding=4, bias=False)
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                with torch.no_grad():
                    m.weight.copy_(bilinear_kernel(k, m.kernel_size[0]))
        for name in ("score_pool4", "score_pool3"):
            if hasattr(self, name):  # skips start at zero: training begins from the coarser net
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) for any (N, C, H, W)."""
        h, w = x.shape[-2:]
        x = _pad_to(x, self.align)
        p3 = self.stage3(self.stage2(self.stage1(x)))
        p4 = self.stage4(p3)
        score = self.score_fr(self.fc(self.stage5(p4)))
        if self.variant != "32s":
            score = self.up2(score) + self.score_pool4(p4)
            if self.variant == "8s":
                score = self.up2b(score) + self.score_pool3(p3)
        return self.up_final(score)[..., :h, :w]


class FCN32s(FCN):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(variant="32s", **kwargs)  # type: ignore[arg-type]


class FCN16s(FCN):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(variant="16s", **kwargs)  # type: ignore[arg-type]


class FCN8s(FCN):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(variant="8s", **kwargs)  # type: ignore[arg-type]


class UNet(nn.Module):
    """U-Net (Ronneberger, Fischer, Brox) with padded convolutions.

    A contracting path of ``depth`` 2 x 2 max-pool steps, each level two 3 x 3 convolutions
    doubling the width, and an expanding path of 2 x 2 transposed convolutions concatenated with
    the matching contracting features.

    Args:
        in_channels: input bands.
        num_classes: output classes.
        base: channels of the first level.
        depth: downsampling steps (total stride ``2 ** depth``).
        batch_norm: BatchNorm after every convolution.
    """

    output_stride = 1
    offset = 0

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base: int = 16,
        depth: int = 4,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.arch_args = constructor_args(locals())
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.align = 2**depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        prev = in_channels
        for width in widths:
            self.down.append(_conv_block(prev, width, 2, batch_norm))
            prev = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(prev, width, 2, stride=2))
            self.merge.append(_conv_block(2 * width, width, 2, batch_norm))
            prev = width
        self.head = nn.Conv2d(prev, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) for any (N, C, H, W)."""
        h, w = x.shape[-2:]
        x = _pad_to(x, self.align)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)[..., :h, :w]
