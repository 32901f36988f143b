"""Recast a patch classifier as a fully convolutional network that scores every position."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .errors import ConversionError

__all__ = ["FullyConvolutional", "convolutionalize", "sequential_layers"]

# Layers that act on each value alone: copied as they are, before or after Flatten.
_POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
)
# Layers that slide over the image: copied, and their strides make up the output stride.
_SLIDING = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d)


class FullyConvolutional(nn.Module):
    """A convolutionalized classifier: any image in, a grid of class logits out.

    Attributes:
        output_stride: input pixels between neighbouring heatmap cells.
        receptive_field: side of the input window one heatmap cell sees (the patch size).
        offset: pixel index within that window the cell is located at (the patch centre pixel).
    """

    def __init__(self, body: nn.Sequential, output_stride: int, receptive_field: int) -> None:
        super().__init__()
        self.body = body
        self.output_stride = output_stride
        self.receptive_field = receptive_field
        self.offset = receptive_field // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes, H', W'); cell (i, j) is the patch at (i * stride, j * stride)."""
        if x.shape[-1] < self.receptive_field or x.shape[-2] < self.receptive_field:
            raise ValueError(
                f"input {tuple(x.shape[-2:])} is smaller than the receptive field "
                f"{self.receptive_field}"
            )
        return self.body(x)


def sequential_layers(model: nn.Module) -> list[nn.Module]:
    """The leaf layers of a model whose forward pass applies its children in order.

    Nested ``nn.Sequential`` containers are flattened; a module that declares
    ``sequential_children = True`` (or ``PatchClassifier``, whose forward is
    ``classifier(features(x))``) is treated like one.

    Raises:
        ConversionError: a container whose forward pass is not a plain sequence.
    """
    from .patch import PatchClassifier

    if isinstance(model, (nn.Sequential, PatchClassifier)) or getattr(
        model, "sequential_children", False
    ):
        layers: list[nn.Module] = []
        for child in model.children():
            layers.extend(sequential_layers(child))
        return layers
    if len(list(model.children())) == 0:
        return [model]
    raise ConversionError(
        f"cannot convolutionalize {type(model).__name__}: its forward pass is not a plain sequence "
        "of layers; build it from nn.Sequential containers"
    )


def convolutionalize(classifier: nn.Module, patch_size: int | None = None) -> FullyConvolutional:
    """The same network with every fully connected layer recast as a convolution.

    The first ``Linear`` after ``Flatten`` becomes a ``k x k`` convolution over the last feature
    map (``k`` = that map's side for a ``patch_size`` input), later ``Linear`` layers become
    ``1 x 1`` convolutions; weights are copied, so heatmap cell ``(i, j)`` equals the
    classifier's logits on the patch whose top-left pixel is ``(i * stride, j * stride)``.

    Args:
        classifier: a patch classifier in eval-ready form (its mode is kept).
        patch_size: the classifier's input patch; defaults to ``classifier.patch_size``.

    Returns:
        A :class:`FullyConvolutional` network on the same device and dtype.

    Raises:
        ConversionError: a layer that cannot be recast; the message names it.
    """
    patch = patch_size or getattr(classifier, "patch_size", None)
    if not patch:
        raise ConversionError("patch_size is unknown: pass convolutionalize(model, patch_size=...)")
    in_channels = getattr(classifier, "in_channels", None)
    layers = sequential_layers(classifier)
    if in_channels is None:
        first = next((m for m in layers if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise ConversionError("the classifier has no Conv2d layer to take the band count from")
        in_channels = first.in_channels
    param = next(classifier.parameters())
    x = torch.zeros(1, in_channels, patch, patch, dtype=param.dtype, device=param.device)

    out: list[nn.Module] = []
    stride = 1
    flattened = False
    was_training = classifier.training
    classifier.eval()
    with torch.no_grad():
        for index, layer in enumerate(layers):
            name = f"layer {index} ({type(layer).__name__})"
            if isinstance(layer, nn.Flatten):
                flattened = True
                continue
            if isinstance(layer, nn.Linear):
                if not flattened:
                    raise ConversionError(f"{name} comes before any Flatten: cannot recast it")
                if x.dim() == 4:
                    channels, height, width = x.shape[1:]
                else:
                    channels, height, width = x.shape[1], 1, 1
                conv = nn.Conv2d(
                    channels, layer.out_features, (height, width), bias=layer.bias is not None
                )
                conv = conv.to(device=param.device, dtype=param.dtype)
                conv.weight.copy_(layer.weight.reshape(layer.out_features, channels, height, width))
                if layer.bias is not None and conv.bias is not None:
                    conv.bias.copy_(layer.bias)
                out.append(conv)
                x = conv(x if x.dim() == 4 else x[:, :, None, None])
                continue
            if isinstance(layer, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
                if x.dim() != 4:
                    raise ConversionError(f"{name} after Flatten: cannot recast it")
                size = layer.output_size
                if size not in (1, (1, 1)):
                    raise ConversionError(
                        f"{name}: only global pooling (output size 1) is supported"
                    )
                kernel = (int(x.shape[2]), int(x.shape[3]))
                pool: nn.Module = (
                    nn.AvgPool2d(kernel, stride=1)
                    if isinstance(layer, nn.AdaptiveAvgPool2d)
                    else nn.MaxPool2d(kernel, stride=1)
                )
                out.append(pool)
                x = pool(x)
                continue
            if isinstance(layer, _POINTWISE):
                out.append(copy.deepcopy(layer))
                x = layer(x) if x.dim() == 4 else x
                continue
            if isinstance(layer, _SLIDING):
                if flattened:
                    raise ConversionError(f"{name} after Flatten: cannot recast it")
                out.append(copy.deepcopy(layer))
                x = layer(x)
                layer_stride = getattr(layer, "stride", 1)
                if isinstance(layer_stride, tuple):
                    if layer_stride[0] != layer_stride[1]:
                        raise ConversionError(f"{name} has unequal strides {layer_stride}")
                    layer_stride = layer_stride[0]
                stride *= int(layer_stride)
                continue
            raise ConversionError(
                f"cannot convolutionalize {name}: no fully convolutional equivalent is known"
            )
    classifier.train(was_training)
    fcn = FullyConvolutional(nn.Sequential(*out), output_stride=stride, receptive_field=patch)
    fcn.train(was_training)
    return fcn
