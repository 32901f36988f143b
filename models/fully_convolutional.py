"""Recast a patch classifier as a fully convolutional network that scores every position."""

from __future__ import annotations

import copy
import operator
from typing import Any

import torch
from torch import fx, nn

from .errors import ConversionError

__all__ = ["FullyConvolutional", "convolutionalize"]

# Modules that act on every position alike, whatever the image size: kept as they are.
_KEEP = (
    nn.Conv2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Hardswish,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
    nn.ZeroPad2d,
    nn.ConstantPad2d,
    nn.ReflectionPad2d,
)
# Functions and methods that work unchanged on (N, C, H, W) instead of (N, C).
_ELEMENTWISE_FUNCTIONS = {
    operator.add,
    operator.mul,
    operator.sub,
    operator.truediv,
    operator.getitem,
    torch.add,
    torch.mul,
    torch.relu,
    torch.sigmoid,
    torch.tanh,
    nn.functional.relu,
    nn.functional.relu6,
    nn.functional.leaky_relu,
    nn.functional.gelu,
    nn.functional.silu,
    nn.functional.elu,
    nn.functional.dropout,
    nn.functional.dropout2d,
    nn.functional.pad,
    nn.functional.hardswish,
    getattr,
}
_ELEMENTWISE_METHODS = {
    "relu",
    "relu_",
    "sigmoid",
    "tanh",
    "add",
    "add_",
    "mul",
    "size",
    "dim",
    "contiguous",
    "clone",
    "float",
    "to",
}


class FullyConvolutional(nn.Module):
    """A convolutionalized classifier: any image in, a grid of class logits out.

    Attributes:
        output_stride: input pixels between neighbouring heatmap cells.
        patch_size: the classifier's patch; heatmap cell (i, j) scores the patch whose top-left
            pixel is (i * output_stride, j * output_stride).
        offset: pixel of that patch the cell stands for (its centre pixel, ``patch_size // 2``).
        align: tile origins must be multiples of this (the output stride) for tiled inference
            to reproduce whole-image inference.
        feature_layer: name (in ``body``) of the classifier's last ``Conv2d``, the layer
            Grad-CAM explains (``models.dense_grad_cam``); empty when unknown.

    The input window each cell depends on is measured by ``models.receptive_window``; for a
    classifier with unpadded convolutions it is exactly the patch.
    """

    def __init__(
        self,
        body: nn.Module,
        output_stride: int,
        patch_size: int,
        in_channels: int,
        feature_layer: str = "",
    ) -> None:
        super().__init__()
        self.body = body
        self.output_stride = output_stride
        self.patch_size = patch_size
        self.offset = patch_size // 2
        self.align = output_stride
        self.in_channels = in_channels
        self.feature_layer = feature_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes, H', W') with ``H' = (H - patch) // output_stride + 1``."""
        if x.shape[-1] < self.patch_size or x.shape[-2] < self.patch_size:
            raise ValueError(
                f"input {tuple(x.shape[-2:])} is smaller than the patch {self.patch_size}"
            )
        return self.body(x)


#: the node meta key where :class:`_Shapes` records a node's output shape
_SHAPE = "wastewatch_shape"


class _Shapes(fx.Interpreter):
    """Runs a traced network, recording each node's output shape in its meta. fx's own
    ``ShapeProp`` does the same but imports sympy on its first call (0.8 s of every model
    actor's start)."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            n.meta[_SHAPE] = tuple(result.shape)
        return result


def _stride_of(module: nn.Module) -> int:
    stride = getattr(module, "stride", 1)
    if isinstance(stride, tuple):
        if len(set(stride)) != 1:
            raise ConversionError(f"{type(module).__name__} has unequal strides {stride}")
        stride = stride[0]
    return int(stride or 1)


def convolutionalize(classifier: nn.Module, patch_size: int | None = None) -> FullyConvolutional:
    """The same network with every fully connected layer recast as a convolution.

    The first ``Linear`` after the spatial part becomes a ``k x k`` convolution over the last
    feature map (``k`` = that map's side for a ``patch_size`` input), later ``Linear`` layers
    ``1 x 1`` convolutions; global average (max) pooling becomes a ``k x k`` average (max) pool
    with stride 1; ``Flatten`` (or ``view``/``flatten``/``mean``) disappears. Weights are
    shared with copies, so the classifier is left as it was.

    Unpadded classifiers convert exactly: heatmap cell ``(i, j)`` equals the classifier's logits
    on the patch at ``(i * stride, j * stride)``. With padded convolutions the classifier sees
    zeros beyond the patch edge, while the dense network sees the real neighbouring pixels: every
    cell is then the classifier's answer with the patch's true surroundings instead of zero
    padding. It equals the classifier exactly on a patch-sized input and wherever the extra
    context is zero, and tiled inference with the card's halo still reproduces whole-image
    inference exactly.

    Args:
        classifier: the patch classifier (any module built from Conv2d, pooling, BatchNorm,
            activations, Dropout, Flatten/global pooling and Linear; residual additions and
            channel concatenations are fine).
        patch_size: the classifier's input patch; defaults to ``classifier.patch_size``.

    Returns:
        A :class:`FullyConvolutional` in eval mode on the classifier's device and dtype.

    Raises:
        ConversionError: a layer with no fully convolutional equivalent (named in the message),
            or a result that does not reproduce the classifier on a patch.
    """
    # new layers are initialised before their weights are copied in: keep the global RNG as it
    # was, so that converting (e.g. to write a card mid-training) never changes a training run
    with torch.random.fork_rng(devices=[]):
        return _convolutionalize(classifier, patch_size)


def _convolutionalize(classifier: nn.Module, patch_size: int | None) -> FullyConvolutional:
    patch = patch_size or getattr(classifier, "patch_size", None)
    if not patch:
        raise ConversionError("patch_size is unknown: pass convolutionalize(model, patch_size=...)")
    in_channels = getattr(classifier, "in_channels", None)
    if in_channels is None:
        first = next((m for m in classifier.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise ConversionError("the classifier has no Conv2d layer to take the band count from")
        in_channels = first.in_channels
    param = next(classifier.parameters())
    source = copy.deepcopy(classifier).eval()
    try:
        gm = fx.symbolic_trace(source)
    except Exception as exc:  # fx raises several types for untraceable control flow
        raise ConversionError(
            f"cannot trace {type(classifier).__name__} ({exc}): keep data-"
            "dependent control flow out of forward"
        ) from None
    convertible = (*_KEEP, nn.Linear, nn.Flatten, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    for node in gm.graph.nodes:
        if node.op == "call_module" and not isinstance(gm.get_submodule(node.target), convertible):
            layer_type = type(gm.get_submodule(node.target)).__name__
            raise ConversionError(
                f"cannot convolutionalize layer {node.target!r} ({layer_type}): no "
                "fully convolutional equivalent is known"
            )
    probe = torch.zeros(1, in_channels, patch, patch, dtype=param.dtype, device=param.device)
    try:
        _Shapes(gm).run(probe)
    except Exception as exc:
        raise ConversionError(
            f"{type(classifier).__name__} fails on a {patch} x {patch} patch: "
            f"{str(exc).splitlines()[0]}"
        ) from None

    def shape(node: Any) -> tuple[int, ...]:
        return node.meta.get(_SHAPE, ()) if isinstance(node, fx.Node) else ()

    modules = dict(gm.named_modules())
    flat: dict[fx.Node, tuple[int, int, int]] = {}  # node -> the (C, h, w) it flattened
    stride: dict[fx.Node, int] = {}
    counter = 0

    def add_module(module: nn.Module) -> str:
        nonlocal counter
        counter += 1
        name = f"_dense_{counter}"
        gm.add_submodule(name, module)
        return name

    def replace_with_module(node: fx.Node, module: nn.Module, arg: fx.Node) -> fx.Node:
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(add_module(module), (arg,))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        return new

    def drop(node: fx.Node, arg: fx.Node) -> None:
        node.replace_all_uses_with(arg)
        gm.graph.erase_node(node)

    for node in list(gm.graph.nodes):
        inputs = [a for a in node.all_input_nodes]
        s_in = max((stride.get(a, 1) for a in inputs), default=1)
        first = inputs[0] if inputs else None
        name = (
            f"{node.target}"
            if node.op == "call_module"
            else f"{getattr(node.target, '__name__', node.target)}"
        )
        if node.op in ("placeholder", "output", "get_attr"):
            stride[node] = s_in
            continue
        if node.op == "call_module":
            module = modules[node.target]
            label = f"layer {node.target!r} ({type(module).__name__})"
            if isinstance(module, nn.Linear):
                src = flat.get(first) if first is not None else None
                if src is None:
                    raise ConversionError(
                        f"{label} does not follow a Flatten or global pooling: cannot recast it"
                    )
                c, h, w = src
                if c * h * w != module.in_features:
                    raise ConversionError(
                        f"{label} expects {module.in_features} inputs, the "
                        f"feature map gives {c}x{h}x{w}"
                    )
                conv = nn.Conv2d(c, module.out_features, (h, w), bias=module.bias is not None)
                conv = conv.to(device=module.weight.device, dtype=module.weight.dtype)
                with torch.no_grad():
                    conv.weight.copy_(module.weight.reshape(module.out_features, c, h, w))
                    if module.bias is not None and conv.bias is not None:
                        conv.bias.copy_(module.bias)
                new = replace_with_module(node, conv, first)  # type: ignore[arg-type]
                flat[new] = (module.out_features, 1, 1)
                stride[new] = s_in
                continue
            if isinstance(module, nn.Flatten):
                sh = shape(first)
                if len(sh) != 4:
                    raise ConversionError(
                        f"{label} flattens a {len(sh)}-d tensor: cannot recast it"
                    )
                assert first is not None
                flat[first] = flat.get(first, (sh[1], sh[2], sh[3]))
                drop(node, first)
                continue
            if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
                if module.output_size not in (1, (1, 1)):
                    raise ConversionError(f"{label}: only global pooling (output size 1) converts")
                sh = shape(first)
                pool_cls = (
                    nn.AvgPool2d if isinstance(module, nn.AdaptiveAvgPool2d) else nn.MaxPool2d
                )
                new = replace_with_module(node, pool_cls((sh[2], sh[3]), stride=1), first)  # type: ignore[arg-type]
                flat[new] = (sh[1], 1, 1)
                stride[new] = s_in
                continue
            if isinstance(module, _KEEP):
                if first in flat and not isinstance(
                    module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d
                ):
                    flat[node] = flat[first]
                elif first in flat:
                    raise ConversionError(f"{label} after Flatten: cannot recast it")
                stride[node] = s_in * (
                    _stride_of(module)
                    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d)
                    else 1
                )
                continue
            raise ConversionError(
                f"cannot convolutionalize {label}: no fully convolutional equivalent is known"
            )
        # call_function / call_method
        target = node.target
        if target in (torch.flatten, "flatten", "view", "reshape") and first is not None:
            sh = shape(first)
            if len(sh) == 4 and len(shape(node)) == 2:
                flat[first] = flat.get(first, (sh[1], sh[2], sh[3]))
                drop(node, first)
                continue
            raise ConversionError(
                f"cannot convolutionalize {name}: reshapes other than flattening "
                "(N, C, H, W) to (N, C*H*W) have no dense equivalent"
            )
        if (
            target
            in (
                torch.mean,
                "mean",
                nn.functional.adaptive_avg_pool2d,
                nn.functional.adaptive_max_pool2d,
                "amax",
            )
            and first is not None
        ):
            sh = shape(first)
            out = shape(node)
            if len(sh) == 4 and out in ((sh[0], sh[1]), (sh[0], sh[1], 1, 1)):
                pool_cls = (
                    nn.MaxPool2d
                    if target in (nn.functional.adaptive_max_pool2d, "amax")
                    else nn.AvgPool2d
                )
                new = replace_with_module(node, pool_cls((sh[2], sh[3]), stride=1), first)
                flat[new] = (sh[1], 1, 1)
                stride[new] = s_in
                continue
            raise ConversionError(f"cannot convolutionalize {name}: only global pooling converts")
        if (
            target in _ELEMENTWISE_FUNCTIONS
            or target in _ELEMENTWISE_METHODS
            or target is torch.cat
        ):
            if target is torch.cat and any(a in flat for a in inputs):
                raise ConversionError("cannot convolutionalize torch.cat of flattened features")
            if first in flat:
                flat[node] = flat[first]
            stride[node] = s_in
            continue
        raise ConversionError(
            f"cannot convolutionalize {name}: no fully convolutional equivalent is known"
        )
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    out_stride = max((stride.get(a, 1) for a in out_node.all_input_nodes), default=1)
    # the classifier's last convolution (what models.grad_cam explains) keeps its name in gm
    convs = [n for n, m in classifier.named_modules() if isinstance(m, nn.Conv2d)]
    fcn = FullyConvolutional(gm, out_stride, patch, in_channels, convs[-1] if convs else "").eval()
    with torch.no_grad():  # a private generator: converting must not move the global RNG
        x = torch.randn(
            2, in_channels, patch, patch, generator=torch.Generator().manual_seed(0)
        ).to(dtype=param.dtype, device=param.device)
        expected = source(x)
        got = fcn(x)
    if got.shape[-2:] != (1, 1) or not torch.allclose(
        got[:, :, 0, 0], expected, atol=1e-4, rtol=1e-4
    ):
        raise ConversionError(
            f"converting {type(classifier).__name__} did not reproduce its output "
            "on a patch: a layer acts differently once convolutionalized"
        )
    return fcn
