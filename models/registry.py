"""Architecture registry: name -> constructor, and the dense (fully convolutional) view of each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .card import halo_for
from .convolutionalize import FullyConvolutional, convolutionalize
from .errors import ModelConfigError
from .patch import PatchClassifier

__all__ = ["ARCHITECTURES", "build", "dense_geometry", "to_dense"]

#: name -> constructor taking the card's ``arch_args``.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "patch": PatchClassifier,
}


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
    except TypeError as exc:
        raise ModelConfigError(f"arguments do not fit architecture {arch!r}: {exc}") from None


def to_dense(model: nn.Module) -> nn.Module:
    """The network that scores every position of an image of any size.

    Patch classifiers are convolutionalized; networks that are already fully convolutional are
    returned as they are. The result has ``output_stride``, ``receptive_field`` and ``offset``.
    """
    if isinstance(model, FullyConvolutional):
        return model
    if isinstance(model, PatchClassifier):
        return convolutionalize(model)
    if all(hasattr(model, a) for a in ("output_stride", "receptive_field", "offset")):
        return model
    raise ModelConfigError(f"{type(model).__name__} has no dense form registered")


def dense_geometry(model: nn.Module) -> dict[str, int]:
    """Output stride, receptive field, offset and halo of a model's dense form, for its card."""
    dense = to_dense(model)
    stride = int(getattr(dense, "output_stride"))  # noqa: B009 (attributes of a Module are untyped)
    rf = int(getattr(dense, "receptive_field"))  # noqa: B009
    offset = int(getattr(dense, "offset"))  # noqa: B009
    return {
        "output_stride": stride,
        "receptive_field": rf,
        "offset": offset,
        "halo": halo_for(rf, stride, offset),
    }
