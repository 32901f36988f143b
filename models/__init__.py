"""wastewatch models: pure PyTorch networks, their fully convolutional forms and checkpoints."""

from .card import ModelCard, halo_for
from .checkpoint import load_checkpoint, read_card, save_checkpoint
from .convolutionalize import FullyConvolutional, convolutionalize
from .errors import CheckpointError, ConversionError, ModelConfigError, WastewatchError
from .metrics import classification_metrics, confusion_matrix
from .patch import PatchClassifier
from .registry import ARCHITECTURES, build, dense_geometry, to_dense
from .train import TrainResult, fit_classifier

__all__ = [
    "ARCHITECTURES",
    "CheckpointError",
    "ConversionError",
    "FullyConvolutional",
    "ModelCard",
    "ModelConfigError",
    "PatchClassifier",
    "TrainResult",
    "WastewatchError",
    "build",
    "classification_metrics",
    "confusion_matrix",
    "convolutionalize",
    "dense_geometry",
    "fit_classifier",
    "halo_for",
    "load_checkpoint",
    "read_card",
    "save_checkpoint",
    "to_dense",
]
