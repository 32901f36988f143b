"""wastewatch models: pure PyTorch networks, their fully convolutional forms and checkpoints."""

from .card import ModelCard, halo_for
from .checkpoint import (
    load_checkpoint,
    load_training_state,
    read_card,
    save_checkpoint,
    save_training_state,
)
from .convolutionalize import FullyConvolutional, convolutionalize
from .densify import densify
from .errors import CheckpointError, ConversionError, ModelConfigError, WastewatchError
from .geometry import receptive_window
from .gradcam import grad_cam
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
from .train import TrainConfig, TrainData, TrainResult, fit, fit_classifier

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
    "densify",
    "fit",
    "fit_classifier",
    "grad_cam",
    "halo_for",
    "load_checkpoint",
    "load_training_state",
    "make_card",
    "object_metrics",
    "read_card",
    "receptive_window",
    "save_checkpoint",
    "save_training_state",
    "segmentation_loss",
    "segmentation_metrics",
    "soft_dice_loss",
    "to_dense",
]
