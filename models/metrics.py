"""Pixel and patch classification metrics computed from a confusion matrix (pure torch)."""

from __future__ import annotations

import torch

__all__ = ["classification_metrics", "confusion_matrix"]


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Confusion matrix ``cm[true, predicted]`` of integer label tensors of the same shape."""
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    index = target * num_classes + pred
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def classification_metrics(cm: torch.Tensor) -> dict[str, float]:
    """Accuracy, mean IoU and per-class precision/recall/F1/IoU from a confusion matrix.

    For two classes the foreground (class 1) figures are also given as ``precision``,
    ``recall``, ``f1`` and ``iou``. Classes absent from both prediction and truth count as NaN
    and are left out of the means.
    """
    cm = cm.double()
    tp = cm.diag()
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    precision = torch.where(tp + fp > 0, tp / (tp + fp), nan)
    recall = torch.where(tp + fn > 0, tp / (tp + fn), nan)
    f1 = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), nan)
    iou = torch.where(tp + fp + fn > 0, tp / (tp + fp + fn), nan)
    total = cm.sum()
    out: dict[str, float] = {
        "accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_iou": float(iou[~iou.isnan()].mean()) if (~iou.isnan()).any() else float("nan"),
    }
    for k in range(cm.shape[0]):
        out[f"precision_{k}"] = float(precision[k])
        out[f"recall_{k}"] = float(recall[k])
        out[f"f1_{k}"] = float(f1[k])
        out[f"iou_{k}"] = float(iou[k])
    if cm.shape[0] == 2:
        out.update(
            precision=out["precision_1"], recall=out["recall_1"], f1=out["f1_1"], iou=out["iou_1"]
        )
    return out
