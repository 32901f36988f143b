"""Shift-and-stitch done the efficient way: the a trous algorithm on a dense network."""

from __future__ import annotations

import copy

from torch import fx, nn

from .errors import ConversionError
from .fully_convolutional import FullyConvolutional
from .layers import DilatedAvgPool2d

__all__ = ["densify"]


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def densify(fcn: FullyConvolutional, stride: int = 1) -> FullyConvolutional:
    """The same network evaluated at output stride ``stride`` in a single pass.

    The strides of the last downsampling layers are removed (reduced) and every later filter is
    dilated by the stride taken out before it, so cell ``(i, j)`` of the result equals the
    classifier on the patch whose top-left pixel is ``(i * stride, j * stride)``: shift-and-stitch
    over every offset, without evaluating shifted copies. ``stride=1`` gives one prediction per
    pixel position.

    Args:
        fcn: a network from :func:`convolutionalize` (or an earlier ``densify``).
        stride: the wanted output stride, a divisor of ``fcn.output_stride``.

    Raises:
        ConversionError: ``stride`` does not divide the output stride, or a layer's stride
            cannot be split at that point.
    """
    if stride <= 0 or fcn.output_stride % stride:
        raise ConversionError(
            f"stride {stride} does not divide the output stride {fcn.output_stride}"
        )
    body = copy.deepcopy(fcn.body)
    if not isinstance(body, fx.GraphModule):
        body = fx.symbolic_trace(body)
    cum: dict[fx.Node, int] = {}  # output stride of the original network at each node
    dil: dict[fx.Node, int] = {}  # spacing of samples in the densified network at each node
    for node in list(body.graph.nodes):
        inputs = node.all_input_nodes
        s_in = max((cum.get(a, 1) for a in inputs), default=1)
        d_in = max((dil.get(a, 1) for a in inputs), default=1)
        cum[node], dil[node] = s_in, d_in
        if node.op != "call_module":
            continue
        module = body.get_submodule(node.target)
        if not isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d | DilatedAvgPool2d):
            continue
        st = _pair(module.stride)[0] if not isinstance(module, DilatedAvgPool2d) else module.stride
        st = st or 1
        # keep the part of this layer's stride that stays at or below the target stride
        if s_in >= stride:
            new_st = 1
        elif s_in * st <= stride:
            new_st = st
        else:
            if stride % s_in or st % (stride // s_in):
                raise ConversionError(
                    f"layer {node.target!r} (stride {st}) cannot be split to reach "
                    f"output stride {stride}"
                )
            new_st = stride // s_in
        cum[node], dil[node] = s_in * st, d_in * st // new_st
        kernel = _pair(getattr(module, "kernel_size", 1))
        if isinstance(module, nn.Conv2d):
            module.stride = (new_st, new_st)
            module.dilation = tuple(d * d_in for d in _pair(module.dilation))  # type: ignore[assignment]
            if not isinstance(module.padding, str):  # "same" padding follows the dilation itself
                module.padding = tuple(p * d_in for p in _pair(module.padding))
        elif isinstance(module, nn.MaxPool2d):
            module.stride = new_st
            module.dilation = _pair(module.dilation)[0] * d_in
            module.padding = _pair(module.padding)[0] * d_in
        elif isinstance(module, DilatedAvgPool2d):
            module.stride = new_st
            module.dilation *= d_in
            module.padding = (module.padding[0] * d_in, module.padding[1] * d_in)
        elif d_in > 1 or new_st != st:
            if module.ceil_mode or not module.count_include_pad:
                raise ConversionError(
                    f"layer {node.target!r}: AvgPool2d with ceil_mode or without "
                    "count_include_pad cannot be dilated"
                )
            pad = _pair(module.padding)
            body.add_submodule(
                node.target, DilatedAvgPool2d(kernel, new_st, (pad[0] * d_in, pad[1] * d_in), d_in)
            )
    body.recompile()
    out = FullyConvolutional(body, stride, fcn.patch_size, fcn.in_channels, fcn.feature_layer)
    return out.train(fcn.training)
