"""Pixel and patch classification metrics from a confusion matrix (pure torch).

Object-level precision/recall/F1 on polygons needs geometry and lives in
``pipeline.evaluate``; it uses the same definitions.
"""

from __future__ import annotations

import torch

__all__ = [
    "classification_metrics",
    "confusion_matrix",
    "object_metrics",
    "segmentation_metrics",
]


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


def object_metrics(
    pred: torch.Tensor, target: torch.Tensor, min_iou: float = 0.3, ignore_index: int | None = 255
) -> dict[str, float]:
    """Object-level precision, recall and F1 of two (H, W) binary or class masks.

    Objects are 8-connected components of non-zero pixels; a predicted object matches a true
    one when their IoU is at least ``min_iou``, one to one, greedily by decreasing IoU, the rule
    ``wastewatch eval`` applies to polygons. Pixels whose target is ``ignore_index`` count as
    background in both masks.
    """
    from .losses import connected_components

    valid = (
        target != ignore_index
        if ignore_index is not None
        else torch.ones_like(target, dtype=torch.bool)
    )
    p = connected_components((pred > 0) & valid)
    t = connected_components((target > 0) & valid)
    n_p, n_t = int(p.max()), int(t.max())
    if n_p == 0 or n_t == 0:
        return {
            "precision": 0.0,
            "recall": 0.0,
            "f1": 0.0,
            "mean_iou": 0.0,
            "predictions": float(n_p),
            "truths": float(n_t),
            "true_positives": 0.0,
        }
    inter = torch.bincount((p * (n_t + 1) + t).reshape(-1), minlength=(n_p + 1) * (n_t + 1))
    inter = inter.reshape(n_p + 1, n_t + 1)[1:, 1:].double()
    area_p = torch.bincount(p.reshape(-1), minlength=n_p + 1)[1:].double()
    area_t = torch.bincount(t.reshape(-1), minlength=n_t + 1)[1:].double()
    iou = inter / (area_p[:, None] + area_t[None, :] - inter)
    pairs = [(-float(iou[i, j]), i, j) for i, j in torch.nonzero(iou >= min_iou).tolist()]
    used_p: set[int] = set()
    used_t: set[int] = set()
    matched = []
    for neg, i, j in sorted(pairs):
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matched.append(-neg)
    tp = len(matched)
    precision, recall = tp / n_p, tp / n_t
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mean_iou": sum(matched) / tp if tp else 0.0,
        "predictions": float(n_p),
        "truths": float(n_t),
        "true_positives": float(tp),
    }
