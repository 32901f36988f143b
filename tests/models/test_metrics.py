"""Metrics against an independent implementation (torchmetrics)."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MulticlassPrecision,
    MulticlassRecall,
)

from models import segmentation_metrics


@pytest.mark.parametrize("num_classes,seed", [(2, 0), (3, 1), (5, 2)])
def test_metrics_agree_with_torchmetrics(num_classes, seed):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, (4, 64, 64), generator=gen)
    pred = torch.where(
        torch.rand(4, 64, 64, generator=gen) < 0.6,
        target,
        torch.randint(0, num_classes, (4, 64, 64), generator=gen),
    )
    target[torch.rand(4, 64, 64, generator=gen) < 0.2] = 255  # unlabelled pixels
    ours = segmentation_metrics(pred, target, num_classes, ignore_index=255)
    kw = {"num_classes": num_classes, "ignore_index": 255}
    acc = MulticlassAccuracy(average="micro", **kw)(pred, target)
    macc = MulticlassAccuracy(average="macro", **kw)(pred, target)
    iou = MulticlassJaccardIndex(average="none", **kw)(pred, target)
    prec = MulticlassPrecision(average="none", **kw)(pred, target)
    rec = MulticlassRecall(average="none", **kw)(pred, target)
    f1 = MulticlassF1Score(average="none", **kw)(pred, target)
    assert ours["accuracy"] == pytest.approx(float(acc), abs=1e-6)
    assert ours["mean_accuracy"] == pytest.approx(float(macc), abs=1e-6)
    assert ours["mean_iou"] == pytest.approx(float(iou.mean()), abs=1e-6)
    assert ours["mean_dice"] == pytest.approx(float(f1.mean()), abs=1e-6)
    for k in range(num_classes):
        assert ours[f"iou_{k}"] == pytest.approx(float(iou[k]), abs=1e-6)
        assert ours[f"precision_{k}"] == pytest.approx(float(prec[k]), abs=1e-6)
        assert ours[f"recall_{k}"] == pytest.approx(float(rec[k]), abs=1e-6)
        assert ours[f"f1_{k}"] == pytest.approx(float(f1[k]), abs=1e-6)
        assert ours[f"dice_{k}"] == ours[f"f1_{k}"]


def test_ignored_pixels_change_nothing():
    target = torch.tensor([[0, 1, 1, 255]])
    pred = torch.tensor([[0, 1, 0, 1]])
    m = segmentation_metrics(pred, target, 2)
    assert m["accuracy"] == pytest.approx(2 / 3) and m["iou_1"] == pytest.approx(1 / 2)


def test_object_metrics_agree_with_polygon_evaluation():
    """The raster rule of models.object_metrics and the polygon rule of wastewatch eval."""
    import numpy as np
    from rasterio.features import rasterize, shapes
    from shapely.geometry import box, shape

    from models import object_metrics
    from pipeline.evaluation import match_polygons

    rng = np.random.default_rng(0)
    truth = [
        box(x, y, x + w, y + h)
        for x, y, w, h in [(5, 5, 20, 15), (40, 10, 10, 10), (70, 60, 25, 20), (10, 70, 8, 8)]
    ]
    pred = [
        box(x + rng.integers(-4, 5), y + rng.integers(-4, 5), x + w, y + h)
        for x, y, w, h in [(5, 5, 20, 15), (40, 10, 10, 10), (70, 60, 25, 20)]
    ]
    pred.append(box(60, 5, 75, 20))  # a false positive
    pred.append(box(10, 70, 12, 72))  # too small a match for truth 3 (IoU 4/64)
    t = rasterize([(g, 1) for g in truth], out_shape=(100, 100), dtype="uint8")
    p = rasterize([(g, 1) for g in pred], out_shape=(100, 100), dtype="uint8")
    ours = object_metrics(torch.from_numpy(p), torch.from_numpy(t), min_iou=0.3)
    # polygons of the rasterized masks, matched as wastewatch eval does
    pp = [shape(g) for g, v in shapes(p, mask=p > 0)]
    tt = [shape(g) for g, v in shapes(t, mask=t > 0)]
    matches = match_polygons(pp, tt, 0.3)
    assert ours["true_positives"] == len(matches) == 3
    assert ours["precision"] == pytest.approx(3 / 5) and ours["recall"] == pytest.approx(3 / 4)
    assert ours["mean_iou"] == pytest.approx(sum(m[2] for m in matches) / 3, abs=1e-9)
