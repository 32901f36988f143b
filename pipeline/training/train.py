"""``wastewatch train``: labelled scenes in, a checkpoint out, on this process or Ray Train."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import (
    PATCH_CLASSIFIERS,
    ModelCard,
    TrainConfig,
    TrainData,
    build,
    load_training_state,
    make_card,
    save_checkpoint,
    save_training_state,
)

from ..errors import InputError
from ..progress import progress
from .datasets import band_statistics, load_labelled_scenes, sample_crops, sample_patches
from .defaults import ARCH_DEFAULTS, DEFAULT_ARGS, ArchDefaults

__all__ = ["ARCH_DEFAULTS", "DEFAULT_ARGS", "ArchDefaults", "train_model", "train_patch_model"]

log = logging.getLogger("wastewatch")
STATE_DIR = "train-state"


def _prepare(
    arch: str,
    arch_args: dict[str, Any],
    scenes: Sequence[str | os.PathLike[str]],
    labels: Sequence[str | os.PathLike[str]],
    classes: list[str],
    *,
    samples: int,
    crop_size: int,
    seed: int,
    sparse: bool | None,
) -> tuple[TrainData, float, bool]:
    data = load_labelled_scenes(list(scenes), list(labels), classes, sparse=sparse)
    mean, std = band_statistics(data)
    if arch in PATCH_CLASSIFIERS:
        x, y = sample_patches(data, int(arch_args["patch_size"]), samples, seed, len(classes))
    else:
        x, y = sample_crops(data, crop_size, samples, seed)
    log.info(
        "training data: %d %s from %d scene(s)",
        len(x),
        "patches" if arch in PATCH_CLASSIFIERS else f"{crop_size}-px crops",
        len(data),
    )
    return (
        TrainData(
            torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), mean, std, len(classes)
        ),
        data[0].gsd_m,
        any(d.sparse for d in data),
    )


def train_model(
    arch: str,
    scenes: Sequence[str | os.PathLike[str]],
    labels: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    arch_args: dict[str, Any] | None = None,
    classes: list[str] | None = None,
    config: TrainConfig | None = None,
    samples: int = 3000,
    crop_size: int = 256,
    sparse: bool | None = None,
    resume: bool = False,
    staged: bool = False,
    workers: int = 1,
    ray_address: str | None = None,
) -> ModelCard:
    """Train a registry architecture on labelled scenes; write a checkpoint after every epoch.

    Args:
        arch: registry name (``patch``, ``resnet``, ``fcn8s``, ``unet``, ...).
        scenes: training scenes.
        labels: one label file per scene (polygons, or points/lines as sparse labels).
        out: checkpoint folder; ``out/train-state`` holds what ``resume`` needs.
        arch_args: constructor arguments (default :data:`DEFAULT_ARGS`).
        classes: class names, 0 the background (default ``background, landfill``).
        config: hyper-parameters (seed, epochs, ...).
        samples: patches per class (patch classifiers) or crops (segmenters).
        crop_size: side of the crops segmenters train on.
        sparse: treat polygons as sparse labels (default: only points and lines are).
        resume: continue from the state of the last finished epoch in ``out``.
        staged: FCN-16s/8s only: train FCN-32s, then 16s (then 8s) from it.
        workers: data-parallel workers on Ray Train (1: this process).
        ray_address: a Ray cluster for the workers.

    Returns:
        The card of the final checkpoint (validation metrics included).
    """
    start = time.perf_counter()
    if arch not in DEFAULT_ARGS:
        raise InputError(f"unknown architecture {arch!r}: choose one of {', '.join(DEFAULT_ARGS)}")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    _check_positive(config or TrainConfig(), samples=samples, crop_size=crop_size)
    if staged and (arch not in ("fcn16s", "fcn8s") or resume or workers > 1 or ray_address):
        raise InputError(
            "--staged applies to --arch fcn16s or fcn8s, without --resume or --workers"
        )
    classes = classes or ["background", "landfill"]
    args = dict(DEFAULT_ARGS[arch] if arch_args is None else arch_args)
    config = config or TrainConfig()
    data, gsd, is_sparse = _prepare(
        arch,
        args,
        scenes,
        labels,
        classes,
        samples=samples,
        crop_size=crop_size,
        seed=config.seed,
        sparse=sparse,
    )
    args.update(in_channels=int(data.x.shape[1]), num_classes=len(classes))
    folder = Path(out)
    state = None
    torch.manual_seed(config.seed)
    model = build(arch, **args)
    if resume:
        from models import load_checkpoint

        model, _ = load_checkpoint(folder)
        state = load_training_state(folder / STATE_DIR)
        log.info("resuming after epoch %d", int(state["epoch"]) + 1)
    bands = (
        ["red", "green", "blue"]
        if data.x.shape[1] == 3
        else [f"band{i + 1}" for i in range(data.x.shape[1])]
    )
    training = {
        "scenes": [Path(s).name for s in scenes],
        "labels": [Path(s).name for s in labels],
        "sparse_labels": is_sparse,
        "samples": len(data.y),
        "workers": workers,
        **{k: v for k, v in asdict(config).items() if v is not None},
    }

    def card_for(metrics: dict[str, float], epochs_done: int) -> ModelCard:
        return make_card(
            arch,
            args,
            model,
            classes=classes,
            bands=bands,
            mean=data.mean,
            std=data.std,
            gsd_m=gsd,
            training={
                **training,
                "epochs_done": epochs_done,
                "seconds": round(time.perf_counter() - start, 1),
            },
            metrics={k: round(v, 4) for k, v in metrics.items() if v == v},
        )

    if staged:
        model, val = _train_staged(arch, args, data, config)
        training["stages"] = ["fcn32s", "fcn16s", "fcn8s"][: 2 if arch == "fcn16s" else 3]
        return save_checkpoint(model, folder, card_for(val, config.epochs))

    if workers > 1 or ray_address:
        from .distributed import train_on_ray

        state_dict, history = train_on_ray(arch, args, data, config, workers, ray_address)
        model.load_state_dict(state_dict)
        metrics = (
            {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")} if history else {}
        )
        return save_checkpoint(model, folder, card_for(metrics, config.epochs))

    from models import fit

    done = int(state["epoch"]) + 1 if state else 0
    with progress(config.epochs - done, "epochs") as advance:

        def on_epoch(epoch: int, metrics: dict[str, float], st: dict[str, Any]) -> None:
            val = {k[4:]: v for k, v in metrics.items() if k.startswith("val_")}
            save_checkpoint(model, folder, card_for(val, epoch + 1))
            save_training_state(st, folder / STATE_DIR)
            log.info("epoch %d/%d: %s", epoch + 1, config.epochs, _fmt(metrics))

        def on_step(step: int, steps: int) -> None:
            advance(1 / steps)  # the bar moves (and its ETA updates) with every step

        result = fit(model, data, config, state=state, on_epoch=on_epoch, on_step=on_step)
    return save_checkpoint(model, folder, card_for(result.val_metrics, config.epochs))


def _train_staged(
    arch: str, args: dict[str, Any], data: TrainData, config: TrainConfig
) -> tuple[torch.nn.Module, dict[str, float]]:
    """FCN training as in Long et al.: FCN-32s first, then FCN-16s (and FCN-8s) initialised from
    the coarser net, the new skip layers starting at zero so each stage begins where the last
    ended. The epochs are split evenly between the stages."""
    from dataclasses import replace

    from models import fit

    chain = ["fcn32s", "fcn16s"] + (["fcn8s"] if arch == "fcn8s" else [])
    epochs = max(1, config.epochs // len(chain))
    previous: dict[str, torch.Tensor] | None = None
    model, val = build(chain[0], **args), {}
    for stage in chain:
        torch.manual_seed(config.seed)
        model = build(stage, **args)
        if previous is not None:
            own = model.state_dict()
            # the final upsampling differs in size between variants: it keeps its bilinear init
            shared = {k: v for k, v in previous.items() if k in own and own[k].shape == v.shape}
            model.load_state_dict(shared, strict=False)
        log.info("stage %s: %d epoch(s)", stage, epochs)
        val = fit(model, data, replace(config, epochs=epochs)).val_metrics
        previous = model.state_dict()
    return model, val


def train_patch_model(
    scenes: Sequence[str | os.PathLike[str]],
    labels: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    patch_size: int = 32,
    channels: tuple[int, ...] = (16, 32, 64),
    epochs: int = 6,
    per_class: int = 3000,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> ModelCard:
    """Train a ``PatchClassifier`` (the walking skeleton's model) on labelled scenes."""
    return train_model(
        "patch",
        scenes,
        labels,
        out,
        arch_args={"patch_size": patch_size, "channels": list(channels)},
        config=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed),
        samples=per_class,
    )


def _check_positive(config: TrainConfig, **sizes: int) -> None:
    """Refuse hyper-parameters that would train nothing (``--epochs 0`` wrote an untrained
    checkpoint with validation figures as if trained)."""
    checks = {
        "--epochs": config.epochs,
        "--batch-size": config.batch_size,
        "--lr": config.lr,
        **{"--" + k.replace("_", "-"): v for k, v in sizes.items()},
    }
    for flag, value in checks.items():
        if not value > 0:
            raise InputError(f"{flag} must be positive, got {value}: nothing would be trained")


def _fmt(metrics: dict[str, float]) -> str:
    keys = ("loss", "val_accuracy", "val_f1", "val_iou")
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in keys if k in metrics)
