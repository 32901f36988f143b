"""Training loops on in-memory tensors (the pipeline prepares patches from scenes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .metrics import classification_metrics, confusion_matrix

__all__ = ["TrainResult", "augment_dihedral", "fit_classifier"]


@dataclass
class TrainResult:
    """What a training run produced besides the weights."""

    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    val_metrics: dict[str, float] = field(default_factory=dict)


def augment_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and 90-degree rotations (one of the 8 dihedral transforms per batch),
    plus a mild per-sample brightness and contrast jitter on normalized inputs."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.randint(0, 2, (1,), generator=generator)):
        x = torch.flip(x, dims=(3,))
    n = x.shape[0]
    gain = 1 + 0.1 * (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1)
    bias = 0.1 * (torch.rand(n, x.shape[1], 1, 1, generator=generator) * 2 - 1)
    return x * gain + bias


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    val_fraction: float = 0.1,
    seed: int = 0,
    augment: bool = True,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a patch classifier with Adam and cross-entropy, class-balanced by sampling.

    Args:
        model: a classifier returning (N, classes) logits.
        x: normalized patches (N, C, P, P), float32.
        y: class of each patch's centre pixel (N,), int64.
        epochs: passes over the training split.
        batch_size: patches per step.
        lr: Adam learning rate (cosine-decayed to 5 % over the run).
        weight_decay: AdamW weight decay.
        val_fraction: share of patches held out for validation metrics.
        seed: seeds the split, the sampling and the augmentation (same seed, same weights on CPU).
        augment: random flips, rotations and colour jitter.
        on_epoch: called with (epoch, metrics) after every epoch.

    Returns:
        The history of losses and the final validation metrics.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    order = torch.randperm(n, generator=generator)
    n_val = round(n * val_fraction) if n >= 20 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    num_classes = int(y.max()) + 1 if y.numel() else 2
    num_classes = max(num_classes, getattr(model, "num_classes", num_classes))
    counts = torch.bincount(y[train_idx], minlength=num_classes).double().clamp(min=1)
    sample_weight = (1.0 / counts)[y[train_idx]]
    steps = max(1, len(train_idx) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * steps, eta_min=lr * 0.05
    )
    loss_fn = nn.CrossEntropyLoss()
    result = TrainResult(epochs=epochs)
    for epoch in range(epochs):
        model.train()
        picks = torch.multinomial(
            sample_weight, steps * batch_size, replacement=True, generator=generator
        )
        total = 0.0
        for step in range(steps):
            idx = train_idx[picks[step * batch_size : (step + 1) * batch_size]]
            xb, yb = x[idx], y[idx]
            if augment:
                xb = augment_dihedral(xb, generator)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        metrics = {"loss": total / steps}
        if n_val:
            metrics.update(
                {
                    f"val_{k}": v
                    for k, v in evaluate_classifier(
                        model, x[val_idx], y[val_idx], num_classes
                    ).items()
                }
            )
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    model.eval()
    if n_val:
        result.val_metrics = evaluate_classifier(model, x[val_idx], y[val_idx], num_classes)
    return result


@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int, batch_size: int = 256
) -> dict[str, float]:
    """Classification metrics of ``model`` on patches ``x`` with labels ``y``."""
    model.eval()
    preds = torch.cat(
        [model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    )
    return classification_metrics(confusion_matrix(preds, y, num_classes))
