"""Receptive windows of dense networks, measured exactly on a positive linear surrogate."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .layers import DilatedAvgPool2d

__all__ = ["receptive_window"]


def _positive_surrogate(model: nn.Module) -> nn.Module:
    """A copy whose output depends on an input pixel exactly when the model's may.

    Max pooling becomes average pooling (a max routes its gradient to one pixel only), every
    weight becomes a positive constant and every bias zero; fed an all-ones input, every
    activation then sits where its derivative is positive, so an input pixel has a non-zero
    gradient if and only if some path of the network connects it to the output.
    """
    probe = copy.deepcopy(model).double().eval()
    for name, module in list(probe.named_modules()):
        if isinstance(module, nn.MaxPool2d):
            parent = probe.get_submodule(name.rsplit(".", 1)[0]) if "." in name else probe
            pool: nn.Module = nn.AvgPool2d(
                module.kernel_size, module.stride, module.padding, module.ceil_mode
            )
            if module.dilation not in (1, (1, 1)):
                # dilated max pooling: a dilated box filter has the same support
                pool = DilatedAvgPool2d(
                    module.kernel_size, module.stride, module.padding, module.dilation
                )
            setattr(parent, name.rsplit(".", 1)[-1], pool)
    with torch.no_grad():
        for module in probe.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.dim() > 1:
                weight.fill_(1.0 / max(1, weight[0].numel()))
            elif isinstance(weight, torch.Tensor):
                weight.fill_(1.0)
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.zero_()
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.zero_()  # type: ignore[union-attr]
                module.running_var.fill_(1.0)  # type: ignore[union-attr]
    return probe


def receptive_window(
    model: nn.Module,
    in_channels: int,
    output_stride: int,
    period: int = 1,
    min_size: int = 64,
    max_size: int = 4096,
) -> tuple[int, int]:
    """The input window a dense network's output cell depends on.

    Output cell ``j`` (along either axis) may depend on input pixels
    ``[j * output_stride + start, j * output_stride + start + size)`` and on no others; padded
    convolutions give a negative ``start``. A network that downsamples internally and upsamples
    again depends on the phase of ``j`` modulo its downsampling: ``period`` consecutive cells
    are measured together and the union of their windows returned. Measured on a square input
    grown until the windows no longer touch the input border.

    Returns:
        ``(start, size)`` in input pixels.

    Raises:
        ValueError: the window touches the border even at ``max_size`` pixels.
    """
    probe = _positive_surrogate(model)
    size = min_size
    with torch.enable_grad():
        return _measure(probe, in_channels, output_stride, period, size, max_size)


def _measure(
    probe: nn.Module, in_channels: int, output_stride: int, period: int, size: int, max_size: int
) -> tuple[int, int]:
    while size <= max_size:
        x = torch.ones(1, in_channels, size, size, dtype=torch.float64, requires_grad=True)
        y = probe(x)
        jr, jc = y.shape[2] // 2, y.shape[3] // 2
        jr, jc = jr - jr % period, jc - jc % period  # a whole period, aligned
        y[0, :, jr : jr + period, jc : jc + period].sum().backward()
        assert x.grad is not None
        support = x.grad[0].abs().sum(0) > 0
        rows = torch.nonzero(support.any(1)).flatten()
        cols = torch.nonzero(support.any(0)).flatten()
        inside = (
            rows.numel()
            and rows.min() > 0
            and rows.max() < size - 1
            and cols.min() > 0
            and cols.max() < size - 1
        )
        if inside:
            start = int(rows.min()) - jr * output_stride
            end = int(rows.max()) + 1 - (jr + period - 1) * output_stride
            return start, end - start
        size *= 2
    raise ValueError(f"receptive window wider than {max_size} px: is the network dense?")
