"""Segmentation losses: weighted cross-entropy, the U-Net border weight map, soft Dice,
random pixel masks, all with an ignore index for unlabelled pixels."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = [
    "IGNORE_INDEX",
    "border_weight_map",
    "connected_components",
    "random_pixel_mask",
    "segmentation_loss",
    "soft_dice_loss",
]

#: label value of unlabelled pixels.
IGNORE_INDEX = 255


def connected_components(mask: torch.Tensor, max_iter: int = 10_000) -> torch.Tensor:
    """8-connected components of a boolean (H, W) mask: int64 ids, 0 for background.

    Ids propagate as the maximum over each pixel's neighbourhood until nothing changes.
    """
    h, w = mask.shape
    ids = torch.arange(1, h * w + 1, dtype=torch.float64, device=mask.device).reshape(1, 1, h, w)
    fg = mask.reshape(1, 1, h, w).to(torch.float64)
    ids = ids * fg
    for _ in range(max_iter):
        grown = F.max_pool2d(ids, 3, stride=1, padding=1) * fg
        if torch.equal(grown, ids):
            break
        ids = grown
    flat = ids.reshape(h, w).long()
    _, dense = torch.unique(flat, return_inverse=True)
    return dense if bool((flat == 0).any()) else dense + 1


def border_weight_map(
    labels: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    w0: float = 10.0,
    sigma: float = 5.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """The U-Net weight map ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``.

    ``w_c`` balances class frequencies (or takes ``class_weights``); ``d1`` and ``d2`` are the
    distances (pixels) to the nearest and second nearest foreground object, so narrow gaps
    between touching objects weigh most (Ronneberger et al. 2015). The border term applies to
    background pixels; ignored pixels get weight 0.

    Args:
        labels: (H, W) int64 class ids, ``ignore_index`` for unlabelled pixels.
        class_weights: per-class weights; default inverse frequency (normalized to mean 1).

    Returns:
        (H, W) float32 weights.
    """
    valid = labels != ignore_index
    n_classes = int(labels[valid].max()) + 1 if valid.any() else 1
    if class_weights is None:
        counts = torch.bincount(labels[valid], minlength=max(n_classes, 2)).double()
        freq = counts / counts.sum().clamp(min=1)
        inv = torch.where(freq > 0, 1.0 / freq.clamp(min=1e-12), torch.zeros_like(freq))
        class_weights = inv / inv[freq > 0].mean() if (freq > 0).any() else inv
    wc = torch.zeros(labels.shape, dtype=torch.float64, device=labels.device)
    wc[valid] = class_weights.to(wc)[labels[valid]]
    objects = connected_components(valid & (labels > 0))
    n_obj = int(objects.max())
    if n_obj >= 2:
        h, w = labels.shape
        yy, xx = torch.meshgrid(
            torch.arange(h, device=labels.device, dtype=torch.float64),
            torch.arange(w, device=labels.device, dtype=torch.float64),
            indexing="ij",
        )
        points = torch.stack([yy.reshape(-1), xx.reshape(-1)], 1)
        dists = []
        for k in range(1, n_obj + 1):
            pts = points[(objects == k).reshape(-1)]
            d = torch.full((h * w,), float("inf"), dtype=torch.float64, device=labels.device)
            for i in range(0, len(pts), 2048):  # chunks keep memory at H*W*2048
                d = torch.minimum(d, torch.cdist(points, pts[i : i + 2048]).min(1).values)
            dists.append(d.reshape(h, w))
        stacked = torch.stack(dists).sort(0).values
        d1, d2 = stacked[0], stacked[1]
        border = w0 * torch.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
        wc = wc + torch.where(valid & (labels == 0), border, torch.zeros_like(border))
    return wc.float()


def random_pixel_mask(
    labels: torch.Tensor,
    fraction: float,
    generator: torch.Generator | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Labels with a random ``fraction`` of the labelled pixels set to ``ignore_index``: the
    loss sees a different subset each step (a regularizer for dense labels)."""
    if fraction <= 0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device="cpu").to(labels.device) < fraction
    return torch.where(drop, torch.full_like(labels, ignore_index), labels)


def soft_dice_loss(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX, eps: float = 1.0
) -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes, on labelled pixels only."""
    probs = logits.softmax(1)
    valid = (labels != ignore_index).unsqueeze(1)
    target = F.one_hot(labels.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
    probs, target = probs * valid, target.to(probs) * valid
    inter = (probs * target).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + target.sum((0, 2, 3))
    dice = (2 * inter + eps) / (denom + eps)
    return 1 - dice[1:].mean() if logits.shape[1] > 1 else 1 - dice.mean()


def segmentation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weights: torch.Tensor | None = None,
    pixel_weights: torch.Tensor | None = None,
    dice_weight: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Pixel-wise cross-entropy (class weights, per-pixel weights such as the U-Net border map,
    ignore index) plus ``dice_weight`` times the soft Dice loss."""
    ce = F.cross_entropy(
        logits, labels, weight=class_weights, ignore_index=ignore_index, reduction="none"
    )
    valid = labels != ignore_index
    if pixel_weights is not None:
        ce = ce * pixel_weights
    loss = ce[valid].sum() / valid.sum().clamp(min=1)
    if dice_weight:
        loss = loss + dice_weight * soft_dice_loss(logits, labels, ignore_index)
    return loss
