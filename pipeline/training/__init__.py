"""Training: labelled scenes to samples, training runs with checkpoints, Ray Train."""

from .._lazy import lazy_exports

__all__ = [
    "ARCH_DEFAULTS",
    "ArchDefaults",
    "LabelledScene",
    "band_statistics",
    "load_labelled_scenes",
    "train_model",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ARCH_DEFAULTS": ".defaults",
        "ArchDefaults": ".defaults",
        "LabelledScene": ".datasets",
        "band_statistics": ".datasets",
        "load_labelled_scenes": ".datasets",
        "train_model": ".train",
    },
)
