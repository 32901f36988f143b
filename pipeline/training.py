"""Training data from scenes and vector labels, and the training commands' logic."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.features import rasterize
from shapely import make_valid

from models import ModelCard, build, fit_classifier, make_card, save_checkpoint

from .errors import InputError
from .scenes import open_scenes
from .vectors import read_vectors

__all__ = ["PatchSet", "sample_patches", "train_patch_model"]

log = logging.getLogger("wastewatch")
#: scenes larger than this are refused for training until windowed sampling lands.
MAX_TRAIN_PIXELS = 400_000_000


@dataclass
class PatchSet:
    """Raw patches (N, C, P, P) uint8/float32, centre-pixel labels (N,), and band statistics."""

    x: np.ndarray
    y: np.ndarray
    mean: list[float]
    std: list[float]
    gsd_m: float
    classes: list[str]


def _label_raster(
    scene_path: str, labels_path: str, classes: list[str]
) -> tuple[np.ndarray, np.ndarray, float]:
    with rasterio.open(scene_path) as src:
        if src.width * src.height > MAX_TRAIN_PIXELS:
            raise InputError(
                f"training scene {scene_path} has {src.width * src.height / 1e6:.0f} Mpx; "
                f"crop it below {MAX_TRAIN_PIXELS / 1e6:.0f} Mpx for training"
            )
        pixels = src.read()
        valid = src.dataset_mask() > 0
        crs, transform, gsd = src.crs, src.transform, float(src.res[0])
        bounds = src.bounds
    frame = read_vectors(labels_path, "labels")
    if "class" not in frame.columns:
        raise InputError(
            f"labels {labels_path} have no 'class' attribute: add one naming each "
            f"polygon's class ({', '.join(classes[1:])})"
        )
    frame = frame.to_crs(crs)
    from shapely.geometry import box

    if not frame.intersects(box(*bounds)).any():
        raise InputError(
            f"labels {labels_path} do not overlap scene {scene_path}: check that both "
            "cover the same place"
        )
    unknown = sorted(set(frame["class"].astype(str)) - set(classes))
    if unknown:
        raise InputError(
            f"labels {labels_path} use classes {unknown} not in {classes}: rename them "
            "or pass --classes"
        )
    shapes = [
        (make_valid(g), classes.index(str(c)))
        for g, c in zip(frame.geometry, frame["class"], strict=True)
    ]
    label = rasterize(shapes, out_shape=valid.shape, transform=transform, fill=0, dtype="uint8")
    return pixels, np.where(valid, label, 255).astype(np.uint8), gsd


def sample_patches(
    scenes: Sequence[str | os.PathLike[str]],
    labels: Sequence[str | os.PathLike[str]],
    patch_size: int,
    per_class: int,
    seed: int,
    classes: list[str] | None = None,
) -> PatchSet:
    """Sample patches centred on labelled pixels, the same number per class where possible.

    A quarter of the background patches are taken within ``patch_size`` pixels of a foreground
    pixel, where the decision is hardest. Patches that hold nodata are skipped.
    """
    classes = classes or ["background", "landfill"]
    if len(scenes) != len(labels):
        raise InputError(
            f"{len(scenes)} scenes but {len(labels)} label files: give one label file "
            "per scene, in the same order"
        )
    infos = open_scenes(list(scenes), 1)
    sums = np.zeros(infos[0].count)
    sqs = np.zeros(infos[0].count)
    if len({i.count for i in infos}) > 1:
        raise InputError(
            "the training scenes have different band counts: give scenes with the same bands"
        )
    rng = np.random.default_rng(seed)
    half = patch_size // 2
    xs, ys = [], []
    counts = 0
    gsd = None
    for scene, lab in zip(scenes, labels, strict=True):
        pixels, label, scene_gsd = _label_raster(str(scene), str(lab), classes)
        gsd = gsd or scene_gsd
        v = label != 255
        flat = pixels[:, v].astype(np.float64)
        sums = sums + flat.sum(1)
        sqs = sqs + (flat**2).sum(1)
        counts += flat.shape[1]
        h, w = label.shape
        # only centres whose whole patch lies in the scene and is valid
        ok = np.zeros_like(v)
        ok[half : h - patch_size + half + 1, half : w - patch_size + half + 1] = _window_all(
            v, patch_size
        )
        fg = (label > 0) & (label != 255)
        near = _dilate(fg, half) & ~fg
        for k in range(len(classes)):
            if k == 0:
                pools = [
                    (np.flatnonzero((label == 0) & ok & ~near), per_class - per_class // 4),
                    (np.flatnonzero(near & ok), per_class // 4),
                ]
            else:
                pools = [(np.flatnonzero((label == k) & ok), per_class)]
            for pool, n in pools:
                if pool.size == 0 or n == 0:
                    continue
                pick = rng.choice(pool, size=min(n, pool.size), replace=False)
                rows, cols = np.unravel_index(pick, label.shape)
                for r, c in zip(rows, cols, strict=True):
                    xs.append(
                        pixels[
                            :, r - half : r - half + patch_size, c - half : c - half + patch_size
                        ]
                    )
                    ys.append(k)
    if not ys or len(set(ys)) < 2:
        raise InputError(
            "the labels give patches of fewer than two classes: label some sites and "
            "make sure the scenes have background around them"
        )
    mean = sums / counts
    std = np.sqrt(np.maximum(sqs / counts - mean**2, 1e-6))
    return PatchSet(
        np.stack(xs),
        np.asarray(ys, np.int64),
        [float(m) for m in mean],
        [float(s) for s in std],
        float(gsd or 1.0),
        classes,
    )


def _window_all(valid: np.ndarray, size: int) -> np.ndarray:
    """For every size x size window (by its top-left pixel): are all its pixels valid?"""
    integral = np.pad(np.cumsum(np.cumsum(~valid, 0, dtype=np.int64), 1), ((1, 0), (1, 0)))
    bad = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    return bad == 0


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square dilation of a boolean mask by ``radius`` pixels."""
    if not mask.any() or radius <= 0:
        return mask.copy()
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    out = torch.nn.functional.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)
    return out[0, 0].numpy() > 0


def train_patch_model(
    scenes: list[str],
    labels: list[str],
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
    """Train a ``PatchClassifier`` on labelled scenes and save it as a checkpoint folder."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    data = sample_patches(scenes, labels, patch_size, per_class, seed)
    arch_args = {
        "in_channels": int(data.x.shape[1]),
        "num_classes": len(data.classes),
        "patch_size": patch_size,
        "channels": list(channels),
    }
    model = build("patch", **arch_args)
    mean = torch.tensor(data.mean, dtype=torch.float32)[None, :, None, None]
    std = torch.tensor(data.std, dtype=torch.float32)[None, :, None, None]
    x = (torch.from_numpy(data.x.astype(np.float32)) - mean) / std
    y = torch.from_numpy(data.y)
    log.info("training on %d patches (%s per class)", len(y), np.bincount(data.y).tolist())
    result = fit_classifier(
        model,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        on_epoch=lambda e, m: log.info("epoch %d: %s", e + 1, _fmt(m)),
    )
    bands = (
        ["red", "green", "blue"] if x.shape[1] == 3 else [f"band{i + 1}" for i in range(x.shape[1])]
    )
    card = make_card(
        "patch",
        arch_args,
        model,
        classes=data.classes,
        bands=bands,
        mean=data.mean,
        std=data.std,
        gsd_m=data.gsd_m,
        training={
            "scenes": [Path(s).name for s in scenes],
            "labels": [Path(s).name for s in labels],
            "patches": len(y),
            "epochs": epochs,
            "seed": seed,
            "batch_size": batch_size,
            "lr": lr,
            "seconds": round(time.perf_counter() - start, 1),
        },
        metrics={k: round(v, 4) for k, v in result.val_metrics.items() if v == v},
    )
    return save_checkpoint(model, out, card)


def _fmt(metrics: dict[str, float]) -> str:
    keys = ("loss", "val_accuracy", "val_f1")
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in keys if k in metrics)
