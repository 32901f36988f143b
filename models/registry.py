"""Architecture registry: name -> constructor, and the dense (fully convolutional) view of each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .atrous import densify
from .card import ModelCard, halo_for
from .errors import ModelConfigError
from .fully_convolutional import FullyConvolutional, convolutionalize
from .geometry import receptive_window
from .patch import PatchClassifier
from .resnet import ResNetClassifier
from .segmentation import FCN8s, FCN16s, FCN32s, UNet

__all__ = [
    "ARCHITECTURES",
    "PATCH_CLASSIFIERS",
    "arch_name",
    "build",
    "default_card",
    "dense_geometry",
    "make_card",
    "to_dense",
]

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


def arch_name(model: nn.Module) -> str:
    """The registry name of a model's architecture.

    Raises:
        ModelConfigError: the model's class is not registered.
    """
    for name, constructor in ARCHITECTURES.items():
        if type(model) is constructor:
            return name
    raise ModelConfigError(
        f"{type(model).__name__} is not a registered architecture: register it "
        "in models.registry.ARCHITECTURES"
    )


def default_card(model: nn.Module) -> ModelCard:
    """A card for a model saved without one: its architecture and geometry, generic class and
    band names, identity normalization and an unknown GSD (0: the pipeline will ask for it)."""
    args = dict(getattr(model, "arch_args", {}))
    n_classes = int(args.get("num_classes", getattr(model, "num_classes", 2)))
    n_bands = int(args.get("in_channels", getattr(model, "in_channels", 3)))
    classes = (
        ["background", "landfill"] if n_classes == 2 else [f"class{k}" for k in range(n_classes)]
    )
    bands = ["red", "green", "blue"] if n_bands == 3 else [f"band{i + 1}" for i in range(n_bands)]
    return make_card(
        arch_name(model),
        args,
        model,
        classes=classes,
        bands=bands,
        mean=[0.0] * n_bands,
        std=[1.0] * n_bands,
        gsd_m=0.0,
    )


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


def to_dense(model: nn.Module, stride: int | None = None) -> nn.Module:
    """The network that scores every position of an image of any size.

    Patch classifiers are convolutionalized (and, with ``stride``, densified to that output
    stride with :func:`~models.densify`); segmentation networks, already dense, are returned as
    they are. The result has ``output_stride``, ``offset`` and ``align``.

    Args:
        model: a registered architecture (or any module with ``patch_size``).
        stride: output stride wanted from a patch classifier, a divisor of its network's output
            stride; None keeps the network's own.

    Raises:
        ModelConfigError: no dense form is registered, or ``stride`` asked of a network that
            is not a patch classifier.
        ConversionError: ``stride`` does not divide the output stride.
    """
    dense: nn.Module
    if isinstance(model, FullyConvolutional | FCN32s | FCN16s | FCN8s | UNet):
        dense = model
    elif isinstance(model, PatchClassifier | ResNetClassifier) or hasattr(model, "patch_size"):
        dense = convolutionalize(model)
    elif all(hasattr(model, a) for a in ("output_stride", "offset")):
        dense = model
    else:
        raise ModelConfigError(f"{type(model).__name__} has no dense form registered")
    if stride is None or stride == getattr(dense, "output_stride", None):
        return dense
    if not isinstance(dense, FullyConvolutional):
        raise ModelConfigError(
            f"{type(model).__name__} is not a patch classifier: only those take another "
            "output stride"
        )
    return densify(dense, stride)


def dense_geometry(model: nn.Module, stride: int | None = None) -> dict[str, int]:
    """Geometry of a model's dense form (at output stride ``stride``, see :func:`to_dense`).

    Returns:
        ``output_stride``, ``offset``, ``align`` (tile origins must be multiples of it), the
        measured receptive window (``rf_start``, ``receptive_field``) and the ``halo`` that makes
        tiled inference exact (a multiple of ``align``). A densified network keeps the
        alignment of the network it came from, so that its tiles are cut as they are at the
        network's own stride.
    """
    base = to_dense(model)
    align = int(getattr(base, "align", getattr(base, "output_stride")))  # noqa: B009
    dense = to_dense(base, stride)
    stride = int(getattr(dense, "output_stride"))  # noqa: B009 (Module attributes are untyped)
    offset = int(getattr(dense, "offset"))  # noqa: B009
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


def make_card(
    arch: str,
    arch_args: dict[str, Any],
    model: nn.Module,
    *,
    classes: list[str],
    bands: list[str],
    mean: list[float],
    std: list[float],
    gsd_m: float,
    **fields: Any,
) -> ModelCard:
    """A model card for ``model`` with its dense geometry measured (see :func:`dense_geometry`)."""
    geo = dense_geometry(model)
    patch = int(getattr(model, "patch_size", 0) or geo["receptive_field"])
    return ModelCard(
        arch=arch,
        arch_args=arch_args,
        classes=classes,
        bands=bands,
        mean=mean,
        std=std,
        gsd_m=gsd_m,
        patch_size=patch,
        output_stride=geo["output_stride"],
        receptive_field=geo["receptive_field"],
        rf_start=geo["rf_start"],
        offset=geo["offset"],
        align=geo["align"],
        halo=geo["halo"],
        **fields,
    )
