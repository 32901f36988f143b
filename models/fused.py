"""A convolution and the rectifier after it as one oneDNN call on CPU.

ATen runs ``relu(conv2d(x))`` as two passes over memory: the convolution writes its output,
the rectifier reads it back and writes it again. oneDNN (the library behind ATen's CPU
convolutions on channels-last float tensors) applies the rectifier to each output block while
it is still in registers: the same convolution, one pass fewer. Measured on
a 2-core Xeon VM, one thread: the 3 -> 16 channel first layer of the benchmark's patch
classifier on a 64 x 2104 px stripe in 2.5 ms against 4.9, the whole row-streamed network on a
2104 px input 6 % faster (median of 12 interleaved passes), its output bit-identical.

The fused operator is ATen's internal ``mkldnn::_convolution_pointwise`` (the one
``torch.compile`` emits for the same pattern on CPU); where a build lacks it or it refuses an
input, :func:`conv_relu` says so by returning None and the caller runs the two layers. It is
also None where ATen itself would not run the convolution through oneDNN (small single
images, 1 x 1 kernels on one thread: ATen's own kernels there round differently), so that
fusing never changes a value: where it runs, its output is the two layers' bit for bit
(tested).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv_relu", "plain_conv"]

#: whether the fused operator is there and has worked (None: not tried yet)
_WORKS: list[bool | None] = [None]


def plain_conv(m: nn.Module) -> bool:
    """Whether ``m`` is a convolution that computes its convolution and nothing else: no
    ``forward`` or ``_conv_forward`` of a subclass's own, no hooks. Only such a layer may be
    replaced by a call of its own (fused, or the stream's ``conv2d`` with its padding)."""
    return (
        isinstance(m, nn.Conv2d)
        and type(m).forward is nn.Conv2d.forward
        and type(m)._conv_forward is nn.Conv2d._conv_forward
        and not (m._forward_hooks or m._forward_pre_hooks)
    )


def _fusable(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    return (
        plain_conv(conv)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not (torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad))
        and _aten_uses_onednn(x, conv)
    )


def _aten_uses_onednn(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ATen runs ``conv`` on ``x`` (a float32 CPU tensor) through oneDNN: its own rule
    (``ConvParams::use_mkldnn`` in ``aten/src/ATen/native/Convolution.cpp``), where it keeps
    small inputs and single-threaded 1 x 1 kernels to its native kernels."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    n = x.shape[0]
    kh, kw = conv.weight.shape[-2:]
    strided = any(s != 1 for s in conv.stride)
    dilated = any(d != 1 for d in conv.dilation)
    if not (strided or dilated or n >= 16 or kw != 1 or kh != 1 or torch.get_num_threads() > 1):
        return False
    return conv.groups > 1 or (kw > 3 and kh > 3) or n > 1 or x.numel() > 20480


def conv_relu(
    x: torch.Tensor, conv: nn.Conv2d, padding: tuple[int, int] | None = None
) -> torch.Tensor | None:
    """``relu(conv(x))`` in one oneDNN call (``padding``: instead of the layer's own), or None
    where that call is not available for this input: a tensor that is not a channels-last
    float32 CPU tensor, gradients wanted, or a build of torch without the operator."""
    if _WORKS[0] is False or not _fusable(x, conv):
        return None
    pad = list(padding if padding is not None else conv.padding)  # type: ignore[arg-type]
    try:
        out: torch.Tensor = torch.ops.mkldnn._convolution_pointwise(
            x,
            conv.weight,
            conv.bias,
            pad,
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            "relu",
            [],
            "",
        )
    except (AttributeError, RuntimeError, NotImplementedError):  # no such operator here
        _WORKS[0] = False
        return None
    _WORKS[0] = True
    return out
