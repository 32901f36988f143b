"""Architecture registry: name -> constructor, and the dense (fully convolutional) view of each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .card import halo_for
from .convolutionalize import FullyConvolutional, convolutionalize
from .errors import ModelConfigError
from .geometry import receptive_window
from .patch import PatchClassifier
from .resnet import ResNetClassifier
from .segmentation import FCN8s, FCN16s, FCN32s, UNet

__all__ = ["ARCHITECTURES", "build", "dense_geometry", "to_dense"]

#: name -> constructor taking the card's ``arch_args``.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "patch": PatchClassifier,
    "resnet": ResNetClassifier,
    "fcn32s": FCN32s,
    "fcn16s": FCN16s,
    "fcn8s": FCN8s,
    "unet": UNet,
}
#: architectures that classify patches and are convolutionalized for dense inference.
PATCH_CLASSIFIERS = ("patch", "resnet")


def build(arch: str, **arch_args: Any) -> nn.Module:
    """Construct a registered architecture.

    Raises:
        ModelConfigError: the name is not registered or the arguments do not fit it.
    """
    try:
        constructor = ARCHITECTURES[arch]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ModelConfigError(f"unknown architecture {arch!r}: choose one of {known}") from None
    try:
        return constructor(**arch_args)
    except (TypeError, ValueError) as exc:
        raise ModelConfigError(f"arguments do not fit architecture {arch!r}: {exc}") from None


def to_dense(model: nn.Module) -> nn.Module:
    """The network that scores every position of an image of any size.

    Patch classifiers are convolutionalized; segmentation networks, already dense, are returned
    as they are. The result has ``output_stride``, ``offset`` and ``align``.
    """
    if isinstance(model, FullyConvolutional | FCN32s | FCN16s | FCN8s | UNet):
        return model
    if isinstance(model, PatchClassifier | ResNetClassifier) or hasattr(model, "patch_size"):
        return convolutionalize(model)
    if all(hasattr(model, a) for a in ("output_stride", "offset")):
        return model
    raise ModelConfigError(f"{type(model).__name__} has no dense form registered")


def dense_geometry(model: nn.Module) -> dict[str, int]:
    """Geometry of a model's dense form, for its card.

    Returns:
        ``output_stride``, ``offset``, ``align`` (tile origins must be multiples of it), the
        measured receptive window (``rf_start``, ``receptive_field``) and the ``halo`` that makes
        tiled inference exact (a multiple of ``align``).
    """
    dense = to_dense(model)
    stride = int(getattr(dense, "output_stride"))  # noqa: B009 (Module attributes are untyped)
    offset = int(getattr(dense, "offset"))  # noqa: B009
    align = int(getattr(dense, "align", stride))
    in_channels = int(getattr(dense, "in_channels", 3))
    was_training = dense.training
    dense.eval()
    start, rf = receptive_window(
        dense,
        in_channels,
        stride,
        period=max(1, align // stride),
        min_size=max(64, 2 * int(getattr(dense, "patch_size", 0))),
    )
    dense.train(was_training)
    halo = halo_for(rf, stride, offset, start)
    return {
        "output_stride": stride,
        "receptive_field": rf,
        "rf_start": start,
        "offset": offset,
        "align": align,
        "halo": -(-halo // align) * align,
    }
