"""Training loops on in-memory tensors: patch classification and full-image segmentation.

The pipeline prepares the data (patches or crops from labelled scenes); this module only
knows tensors. A run is reproducible: the same seed gives the same weights on CPU, and a run
resumed from the state saved after epoch k ends with the same weights as one never stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .losses import IGNORE_INDEX, border_weight_map, random_pixel_mask, segmentation_loss
from .metrics import classification_metrics, confusion_matrix, object_metrics

__all__ = [
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "augment_dihedral",
    "evaluate",
    "fit",
    "fit_classifier",
]


@dataclass
class TrainConfig:
    """Hyper-parameters of a run.

    Attributes:
        epochs: passes (``steps_per_epoch`` batches each).
        batch_size: samples per step (per worker when distributed).
        lr: AdamW learning rate, cosine-decayed to 5 % over the run.
        weight_decay: AdamW weight decay.
        seed: seeds the split, sampling and augmentation.
        augment: random flips, 90-degree rotations and colour jitter.
        val_fraction: share of samples held out for validation metrics.
        steps_per_epoch: batches per epoch (default: one pass over the training split).
        class_weights: cross-entropy class weights (segmentation; default inverse frequency).
        dice_weight: weight of the soft Dice term (segmentation).
        border_w0: weight of the U-Net border term (0 turns the weight map off).
        border_sigma: width of the border term, pixels.
        pixel_mask: fraction of labelled pixels dropped from each step's loss.
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment: bool = True
    val_fraction: float = 0.1
    steps_per_epoch: int | None = None
    class_weights: list[float] | None = None
    dice_weight: float = 0.5
    border_w0: float = 0.0
    border_sigma: float = 5.0
    pixel_mask: float = 0.0


@dataclass
class TrainData:
    """Samples as tensors.

    Attributes:
        x: raw pixels (N, C, H, W), any dtype; normalized with ``mean``/``std`` per batch.
        y: labels: (N,) class of each patch's centre pixel, or (N, H, W) label maps with
            ``IGNORE_INDEX`` for unlabelled pixels.
        mean: per-band mean of the raw values.
        std: per-band standard deviation.
        num_classes: classes, 0 the background.
    """

    x: torch.Tensor
    y: torch.Tensor
    mean: list[float]
    std: list[float]
    num_classes: int = 2

    @property
    def dense(self) -> bool:
        return self.y.dim() == 3


@dataclass
class TrainResult:
    """What a training run produced besides the weights."""

    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    val_metrics: dict[str, float] = field(default_factory=dict)


def augment_dihedral(
    x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One of the 8 flips/rotations per batch (applied to label maps too) plus a per-sample
    brightness and contrast jitter on normalized inputs."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    flip = bool(torch.randint(0, 2, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if flip:
        x = torch.flip(x, dims=(3,))
    if y is not None and y.dim() == 3:
        y = torch.rot90(y, k, dims=(1, 2))
        if flip:
            y = torch.flip(y, dims=(2,))
    n = x.shape[0]
    gain = 1 + 0.1 * (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1)
    bias = 0.1 * (torch.rand(n, x.shape[1], 1, 1, generator=generator) * 2 - 1)
    return x * gain + bias, y


def _normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float() - mean) / std


@torch.no_grad()
def evaluate(
    model: nn.Module, data: TrainData, index: torch.Tensor, batch_size: int = 64
) -> dict[str, float]:
    """Metrics of ``model`` on the samples ``index``: classification metrics of patches or
    pixels, and for label maps also object-level ``object_precision``, ``object_recall`` and
    ``object_f1`` (connected components matched at IoU >= 0.3, summed over the crops)."""
    model.eval()
    mean = torch.tensor(data.mean)[None, :, None, None]
    std = torch.tensor(data.std)[None, :, None, None]
    cm = torch.zeros(data.num_classes, data.num_classes, dtype=torch.int64)
    tp = n_pred = n_true = 0.0
    for i in range(0, len(index), batch_size):
        idx = index[i : i + batch_size]
        pred = model(_normalize(data.x[idx], mean, std)).argmax(1)
        cm += confusion_matrix(pred, data.y[idx], data.num_classes, IGNORE_INDEX)
        if data.dense:
            for p, t in zip(pred, data.y[idx], strict=True):
                m = object_metrics(p, t)
                tp += m["true_positives"]
                n_pred += m["predictions"]
                n_true += m["truths"]
    out = classification_metrics(cm)
    if data.dense:
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        out.update(
            object_precision=precision,
            object_recall=recall,
            object_f1=2 * precision * recall / (precision + recall) if tp else 0.0,
        )
    return out


def fit(
    model: nn.Module,
    data: TrainData,
    config: TrainConfig,
    *,
    state: dict[str, Any] | None = None,
    on_epoch: Callable[[int, dict[str, float], dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> TrainResult:
    """Train ``model`` (a classifier for patch labels, a segmenter for label maps).

    Classifiers see class-balanced resampled patches; segmenters see random crops with
    cross-entropy (class weights, optional U-Net border weights and random pixel masks) plus
    soft Dice, unlabelled pixels ignored.

    Args:
        model: the network (a DDP wrapper when distributed).
        data: the samples.
        config: hyper-parameters.
        state: a state given to ``on_epoch`` by an earlier run: training resumes after it.
        on_epoch: called after every epoch with (epoch, metrics, state); the state holds the
            optimizer, scheduler and random generators as tensors and plain values.
        on_step: called after every optimizer step with (step in the epoch, steps per epoch),
            e.g. to draw a progress bar with an ETA.
        rank: this worker's rank when training data-parallel.
        world_size: workers; each takes its share of every epoch's steps.

    Returns:
        Loss history and validation metrics.
    """
    torch.manual_seed(config.seed)
    split = torch.Generator().manual_seed(config.seed)
    n = data.x.shape[0]
    order = torch.randperm(n, generator=split)
    n_val = round(n * config.val_fraction) if n >= 10 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    generator = torch.Generator().manual_seed(config.seed * 1000 + rank)
    dense = data.dense
    if dense:
        weights = torch.ones(len(train_idx), dtype=torch.float64)
        pixel_counts = torch.bincount(
            data.y[train_idx][data.y[train_idx] != IGNORE_INDEX].reshape(-1),
            minlength=data.num_classes,
        ).double()
        freq = pixel_counts / pixel_counts.sum().clamp(min=1)
        if config.class_weights is not None:
            class_weights = torch.tensor(config.class_weights, dtype=torch.float32)
        else:  # median frequency balancing
            present = freq[freq > 0]
            class_weights = torch.where(
                freq > 0, present.median() / freq.clamp(min=1e-12), torch.zeros_like(freq)
            ).float()
    else:
        counts = torch.bincount(data.y[train_idx], minlength=data.num_classes).double().clamp(min=1)
        weights = (1.0 / counts)[data.y[train_idx]]
        class_weights = None
    steps = config.steps_per_epoch or max(1, len(train_idx) // config.batch_size)
    steps = max(1, steps // world_size)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps, eta_min=config.lr * 0.05
    )
    mean = torch.tensor(data.mean, dtype=torch.float32)[None, :, None, None]
    std = torch.tensor(data.std, dtype=torch.float32)[None, :, None, None]
    start_epoch = 0
    result = TrainResult(epochs=config.epochs)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = int(state["epoch"]) + 1
        result.history = list(state.get("history", []))
    inner = getattr(model, "module", model)  # the network inside a DDP wrapper
    base: nn.Module = inner if isinstance(inner, nn.Module) else model
    for epoch in range(start_epoch, config.epochs):
        model.train()
        picks = torch.multinomial(
            weights, steps * config.batch_size, replacement=True, generator=generator
        )
        total = 0.0
        for step in range(steps):
            idx = train_idx[picks[step * config.batch_size : (step + 1) * config.batch_size]]
            xb = _normalize(data.x[idx], mean, std)
            yb = data.y[idx].long()
            if config.augment:
                xb, yb_aug = augment_dihedral(xb, yb, generator)
                yb = yb_aug if yb_aug is not None else yb
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            if dense:
                yb = random_pixel_mask(yb, config.pixel_mask, generator)
                pw = None
                if config.border_w0 > 0:
                    assert class_weights is not None
                    pw = torch.stack(
                        [
                            border_weight_map(
                                lab, class_weights.double(), config.border_w0, config.border_sigma
                            )
                            for lab in yb
                        ]
                    )
                loss = segmentation_loss(
                    logits,
                    yb,
                    class_weights=None if pw is not None else class_weights,
                    pixel_weights=pw,
                    dice_weight=config.dice_weight,
                )
            else:
                loss = nn.functional.cross_entropy(logits, yb)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            if on_step is not None:
                on_step(step + 1, steps)
        metrics: dict[str, float] = {"loss": total / steps, "lr": float(scheduler.get_last_lr()[0])}
        if n_val:
            metrics.update({f"val_{k}": v for k, v in evaluate(base, data, val_idx).items()})
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(
                epoch,
                metrics,
                {
                    "epoch": epoch,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": result.history,
                },
            )
    model.eval()
    if n_val:
        result.val_metrics = evaluate(base, data, val_idx)
    return result


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    augment: bool = True,
    **kwargs: Any,
) -> TrainResult:
    """Train a classifier on normalized patches ``x`` with centre-pixel labels ``y``."""
    c = x.shape[1]
    data = TrainData(
        x, y, [0.0] * c, [1.0] * c, max(int(y.max()) + 1, getattr(model, "num_classes", 2))
    )
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, augment=augment)
    return fit(model, data, config, **kwargs)
