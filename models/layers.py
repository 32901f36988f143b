"""Small layers shared by the dense-network tools."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DilatedAvgPool2d", "constructor_args"]


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class DilatedAvgPool2d(nn.Module):
    """Average pooling over a dilated window (``nn.AvgPool2d`` has no dilation), with zero
    padding counted in the mean like ``AvgPool2d(count_include_pad=True)``."""

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)[0]
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        weight = torch.full(
            (x.shape[1], 1, kh, kw), 1.0 / (kh * kw), dtype=x.dtype, device=x.device
        )
        return nn.functional.conv2d(
            x,
            weight,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=x.shape[1],
        )


def constructor_args(frame_locals: dict[str, object]) -> dict[str, object]:
    """The arguments an ``__init__`` was called with (from its ``locals()``), JSON-ready, so a
    checkpoint can rebuild the network: ``self.arch_args = constructor_args(locals())``."""
    out: dict[str, object] = {}
    for name, value in frame_locals.items():
        if name in ("self", "__class__") or name.startswith("_"):
            continue
        out[name] = list(value) if isinstance(value, tuple) else value
    return out
