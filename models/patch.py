"""Patch classifiers: CNNs that label a fixed-size patch by the class of its centre pixel."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .errors import ModelConfigError
from .layers import constructor_args

__all__ = ["PatchClassifier"]


class PatchClassifier(nn.Module):
    """A VGG-like patch classifier ending in ``Flatten`` and fully connected layers.

    Each stage is ``convs_per_stage`` 3 x 3 convolutions (unpadded by default, so the network's
    receptive field is exactly the patch) with ReLU, followed by 2 x 2 max pooling. The head is
    ``Flatten -> Linear(hidden) -> ReLU -> Dropout -> Linear(num_classes)``.

    Args:
        in_channels: input bands.
        num_classes: output classes (index 0 is the background).
        patch_size: side of the square input patch, pixels.
        channels: output channels of each stage.
        convs_per_stage: 3 x 3 convolutions per stage.
        hidden: width of the hidden fully connected layer.
        padding: padding of the convolutions; 0 keeps the receptive field equal to the patch.
        dropout: dropout probability before the last layer.
        batch_norm: add ``BatchNorm2d`` after every convolution.
        pool_last: also pool after the last stage (output stride ``2 ** len(channels)``).

    Raises:
        ModelConfigError: the patch is too small for the stages.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        patch_size: int = 64,
        channels: Sequence[int] = (16, 32, 64),
        convs_per_stage: int = 2,
        hidden: int = 64,
        padding: int = 0,
        dropout: float = 0.2,
        batch_norm: bool = False,
        pool_last: bool = False,
    ) -> None:
        super().__init__()
        self.arch_args = constructor_args(locals())
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.patch_size = patch_size
        layers: list[nn.Module] = []
        size, prev = patch_size, in_channels
        for i, width in enumerate(channels):
            for _ in range(convs_per_stage):
                layers.append(nn.Conv2d(prev, width, 3, padding=padding))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU(inplace=True))
                prev, size = width, size - 2 + 2 * padding
            if i < len(channels) - 1 or pool_last:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            if size < 1:
                raise ModelConfigError(
                    f"patch_size={patch_size} is too small for {len(channels)} stages of "
                    f"{convs_per_stage} unpadded 3x3 convolutions: use a larger patch or fewer "
                    "stages"
                )
        self.features = nn.Sequential(*layers)
        self.feature_size = size
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(prev * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, num_classes) for patches of shape (N, C, patch, patch)."""
        return self.classifier(self.features(x))
