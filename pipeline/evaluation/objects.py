"""Object-level evaluation of detections against truth polygons."""

from __future__ import annotations

import os
from typing import Any

import geopandas as gpd
import numpy as np
from shapely import STRtree

from ..geo import read_vectors, utm_crs_for

__all__ = ["evaluate_detections", "match_polygons"]


def match_polygons(
    pred: list[Any], truth: list[Any], min_iou: float = 0.3
) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(pred_index, truth_index, iou)`` with IoU >= ``min_iou``,
    greedily by decreasing IoU (ties by indices, so the result is deterministic)."""
    tree = STRtree(truth)
    candidates = []
    for i, p in enumerate(pred):
        for j in tree.query(p, predicate="intersects"):
            t = truth[int(j)]
            union = p.union(t).area
            iou = p.intersection(t).area / union if union > 0 else 0.0
            if iou >= min_iou:
                candidates.append((-iou, i, int(j)))
    candidates.sort()
    used_p: set[int] = set()
    used_t: set[int] = set()
    matches = []
    for neg_iou, i, j in candidates:
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        matches.append((i, j, -neg_iou))
    return matches


def _read_truth(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Truth sites to be found: a revisit's ``disappeared`` sites are left out."""
    truth = read_vectors(path, "truth")
    if "status" in truth.columns:
        truth = truth[truth["status"].astype(str) != "disappeared"]
    return truth


def evaluate_detections(
    pred_path: str | os.PathLike[str], truth_path: str | os.PathLike[str], min_iou: float = 0.3
) -> dict[str, Any]:
    """Object-level precision, recall and F1 and the mean IoU of matched sites.

    Both files are reprojected to the UTM zone of the truth so that areas are in square metres.
    Truth sites whose ``status`` is ``disappeared`` (a revisit's vanished sites) are not
    expected to be found and are left out.
    """
    truth = _read_truth(truth_path)
    pred = read_vectors(pred_path, "predictions", allow_empty=True)
    c = truth.to_crs(4326).union_all().centroid
    crs = utm_crs_for(c.x, c.y)
    p = list(pred.to_crs(crs).geometry.make_valid()) if len(pred) else []
    t = list(truth.to_crs(crs).geometry.make_valid())
    matches = match_polygons(p, t, min_iou)
    tp = len(matches)
    precision = tp / len(p) if p else 0.0
    recall = tp / len(t) if t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "mean_iou": round(float(np.mean([m[2] for m in matches])), 4) if matches else 0.0,
        "true_positives": tp,
        "predictions": len(p),
        "truths": len(t),
        "min_iou": min_iou,
    }


def pixel_metrics(
    mask_path: str | os.PathLike[str], truth_path: str | os.PathLike[str], class_id: int = 1
) -> dict[str, Any]:
    """Pixel precision, recall and IoU of class ``class_id`` in a mask raster against truth
    polygons, over the mask's valid pixels, block by block (memory: one block)."""
    import rasterio
    from rasterio.features import rasterize

    truth = _read_truth(truth_path)
    tp = fp = fn = 0
    with rasterio.open(mask_path) as src:
        geoms = list(truth.to_crs(src.crs).geometry)
        for _, win in src.block_windows(1):
            m = src.read(1, window=win)
            valid = m != 255
            if not valid.any():
                continue
            t = (
                rasterize(
                    [(g, 1) for g in geoms],
                    out_shape=m.shape,
                    transform=src.window_transform(win),
                    fill=0,
                    dtype="uint8",
                )
                > 0
            )
            p = m == class_id
            tp += int((p & t & valid).sum())
            fp += int((p & ~t & valid).sum())
            fn += int((~p & t & valid).sum())
    return {
        "pixel_precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "pixel_recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "pixel_iou": round(tp / (tp + fp + fn), 4) if tp + fp + fn else 0.0,
    }
