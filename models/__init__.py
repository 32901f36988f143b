"""wastewatch models: pure PyTorch networks, their fully convolutional forms and checkpoints."""

from .card import ModelCard, halo_for
from .checkpoint import load_checkpoint, read_card, save_checkpoint
from .convolutionalize import FullyConvolutional, convolutionalize
from .densify import densify
from .errors import CheckpointError, ConversionError, ModelConfigError, WastewatchError
from .geometry import receptive_window
from .gradcam import grad_cam
from .metrics import classification_metrics, confusion_matrix
from .patch import PatchClassifier
from .registry import (
    ARCHITECTURES,
    PATCH_CLASSIFIERS,
    build,
    dense_geometry,
    make_card,
    to_dense,
)
from .resnet import ResNetClassifier
from .segmentation import FCN, FCN8s, FCN16s, FCN32s, UNet
from .train import TrainResult, fit_classifier

__all__ = [
    "ARCHITECTURES",
    "FCN",
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
    "TrainResult",
    "UNet",
    "WastewatchError",
    "build",
    "classification_metrics",
    "confusion_matrix",
    "convolutionalize",
    "dense_geometry",
    "densify",
    "fit_classifier",
    "grad_cam",
    "halo_for",
    "load_checkpoint",
    "make_card",
    "read_card",
    "receptive_window",
    "save_checkpoint",
    "to_dense",
]
