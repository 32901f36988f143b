"""wastewatch models: pure PyTorch networks, their fully convolutional forms and checkpoints.

Names are imported lazily from their modules: ``import models.errors`` (what the command line
needs for its error handling) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .atrous import densify
    from .card import ModelCard, halo_for
    from .checkpoint import (
        load_checkpoint,
        load_training_state,
        read_card,
        save_checkpoint,
        save_training_state,
    )
    from .errors import CheckpointError, ConversionError, ModelConfigError, WastewatchError
    from .fully_convolutional import FullyConvolutional, convolutionalize
    from .geometry import receptive_window
    from .gradcam import dense_grad_cam, grad_cam, grad_cam_halo
    from .losses import IGNORE_INDEX, border_weight_map, segmentation_loss, soft_dice_loss
    from .metrics import (
        classification_metrics,
        confusion_matrix,
        object_metrics,
        segmentation_metrics,
    )
    from .patch import PatchClassifier
    from .registry import (
        ARCHITECTURES,
        PATCH_CLASSIFIERS,
        arch_name,
        build,
        default_card,
        dense_geometry,
        make_card,
        to_dense,
    )
    from .resnet import ResNetClassifier
    from .segmentation import FCN, FCN8s, FCN16s, FCN32s, UNet
    from .streaming import RowSource, RowStreamed, StreamTooShort, row_streamed
    from .train import TrainConfig, TrainData, TrainResult, fit, fit_classifier

_WHERE = {
    "ARCHITECTURES": "registry",
    "CheckpointError": "errors",
    "ConversionError": "errors",
    "FCN": "segmentation",
    "FCN16s": "segmentation",
    "FCN32s": "segmentation",
    "FCN8s": "segmentation",
    "FullyConvolutional": "fully_convolutional",
    "IGNORE_INDEX": "losses",
    "ModelCard": "card",
    "ModelConfigError": "errors",
    "PATCH_CLASSIFIERS": "registry",
    "PatchClassifier": "patch",
    "ResNetClassifier": "resnet",
    "RowSource": "streaming",
    "RowStreamed": "streaming",
    "StreamTooShort": "streaming",
    "TrainConfig": "train",
    "TrainData": "train",
    "TrainResult": "train",
    "UNet": "segmentation",
    "WastewatchError": "errors",
    "arch_name": "registry",
    "border_weight_map": "losses",
    "build": "registry",
    "classification_metrics": "metrics",
    "confusion_matrix": "metrics",
    "convolutionalize": "fully_convolutional",
    "default_card": "registry",
    "dense_geometry": "registry",
    "dense_grad_cam": "gradcam",
    "densify": "atrous",
    "fit": "train",
    "fit_classifier": "train",
    "grad_cam": "gradcam",
    "grad_cam_halo": "gradcam",
    "halo_for": "card",
    "load_checkpoint": "checkpoint",
    "load_training_state": "checkpoint",
    "make_card": "registry",
    "object_metrics": "metrics",
    "read_card": "checkpoint",
    "receptive_window": "geometry",
    "row_streamed": "streaming",
    "save_checkpoint": "checkpoint",
    "save_training_state": "checkpoint",
    "segmentation_loss": "losses",
    "segmentation_metrics": "metrics",
    "soft_dice_loss": "losses",
    "to_dense": "registry",
}


__all__ = [
    "ARCHITECTURES",
    "FCN",
    "IGNORE_INDEX",
    "PATCH_CLASSIFIERS",
    "CheckpointError",
    "ConversionError",
    "FCN8s",
    "FCN16s",
    "FCN32s",
    "FullyConvolutional",
    "ModelCard",
    "ModelConfigError",
    "PatchClassifier",
    "ResNetClassifier",
    "RowSource",
    "RowStreamed",
    "StreamTooShort",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "UNet",
    "WastewatchError",
    "arch_name",
    "border_weight_map",
    "build",
    "classification_metrics",
    "confusion_matrix",
    "convolutionalize",
    "default_card",
    "dense_geometry",
    "dense_grad_cam",
    "densify",
    "fit",
    "fit_classifier",
    "grad_cam",
    "grad_cam_halo",
    "halo_for",
    "load_checkpoint",
    "load_training_state",
    "make_card",
    "object_metrics",
    "read_card",
    "receptive_window",
    "row_streamed",
    "save_checkpoint",
    "save_training_state",
    "segmentation_loss",
    "segmentation_metrics",
    "soft_dice_loss",
    "to_dense",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
