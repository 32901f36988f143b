"""Per-architecture training defaults (no torch here: ``wastewatch train --help`` shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ARCH_DEFAULTS", "DEFAULT_ARGS", "ArchDefaults"]


@dataclass(frozen=True)
class ArchDefaults:
    """What ``wastewatch train --arch A`` uses when no tuning flag is given.

    Chosen so that every architecture trains a useful model on a 2-core CPU in at most about 10
    minutes on a 4096 x 4096 scene (``bench/training.py`` measures patch and unet).

    Attributes:
        args: constructor arguments.
        epochs: passes over the samples.
        samples: patch classifiers: patches drawn per class; segmenters: random crops in all.
        crop_size: segmenters: side of a training crop, px.
        batch_size: samples per step.
        lr: AdamW learning rate.
    """

    args: dict[str, Any]
    epochs: int
    samples: int
    batch_size: int
    lr: float
    crop_size: int = 192


ARCH_DEFAULTS: dict[str, ArchDefaults] = {
    "patch": ArchDefaults({"patch_size": 48, "channels": [16, 32, 64]}, 6, 5000, 64, 2e-3),
    "resnet": ArchDefaults({"patch_size": 64, "width": 16, "layers": [1, 1, 1]}, 6, 3000, 64, 2e-3),
    "fcn32s": ArchDefaults({}, 8, 240, 8, 3e-3),
    "fcn16s": ArchDefaults({}, 8, 240, 8, 3e-3),
    "fcn8s": ArchDefaults({}, 8, 240, 8, 3e-3),
    "unet": ArchDefaults({"base": 16, "depth": 4}, 8, 240, 8, 3e-3),
}

#: architecture arguments used when the command line gives none.
DEFAULT_ARGS: dict[str, dict[str, Any]] = {k: v.args for k, v in ARCH_DEFAULTS.items()}
