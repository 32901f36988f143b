"""Pixel and patch classification metrics from a confusion matrix (pure torch).

Object-level precision/recall/F1 on polygons needs geometry and lives in
``pipeline.evaluate``; it uses the same definitions.
"""

from __future__ import annotations

import torch

__all__ = ["classification_metrics", "confusion_matrix", "segmentation_metrics"]


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Confusion matrix ``cm[true, predicted]`` (int64) of integer label tensors of one shape.

    Pixels whose target is ``ignore_index`` are left out.
    """
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    index = target * num_classes + pred
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    nan = torch.full_like(num, float("nan"))
    return torch.where(den > 0, num / den.clamp(min=1e-12), nan)


def _nanmean(x: torch.Tensor) -> float:
    keep = ~x.isnan()
    return float(x[keep].mean()) if keep.any() else float("nan")


def classification_metrics(cm: torch.Tensor) -> dict[str, float]:
    """Every metric of a confusion matrix.

    Returns:
        ``accuracy`` (pixel accuracy), ``mean_accuracy`` (mean per-class recall, "mean pixel
        accuracy"), ``mean_iou``, ``mean_dice`` and per class ``k``: ``precision_k``,
        ``recall_k``, ``f1_k``, ``dice_k`` (equal to F1 for hard labels) and ``iou_k``. With two
        classes the foreground figures are also ``precision``, ``recall``, ``f1``, ``iou``. A
        class absent from both truth and prediction has NaN figures, left out of the means.
    """
    cm = cm.double()
    tp = cm.diag()
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    iou = _ratio(tp, tp + fp + fn)
    total = cm.sum()
    out: dict[str, float] = {
        "accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_accuracy": _nanmean(recall),
        "mean_iou": _nanmean(iou),
        "mean_dice": _nanmean(f1),
    }
    for k in range(cm.shape[0]):
        out[f"precision_{k}"] = float(precision[k])
        out[f"recall_{k}"] = float(recall[k])
        out[f"f1_{k}"] = float(f1[k])
        out[f"dice_{k}"] = float(f1[k])
        out[f"iou_{k}"] = float(iou[k])
    if cm.shape[0] == 2:
        out.update(
            precision=out["precision_1"], recall=out["recall_1"], f1=out["f1_1"], iou=out["iou_1"]
        )
    return out


def segmentation_metrics(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = 255
) -> dict[str, float]:
    """:func:`classification_metrics` of label maps, ``ignore_index`` pixels left out."""
    return classification_metrics(confusion_matrix(pred, target, num_classes, ignore_index))
