"""A survey scored against a truth that carries ``status`` (what ``synth revisit`` writes):
object-level precision/recall/F1 of its sites, and how often a detected truth site got its
true status."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..geo import read_vectors, utm_crs_for
from .objects import evaluate_detections, match_polygons

__all__ = ["evaluate_survey"]

#: what a truth site without a status (a first scene's truth) is.
DEFAULT_STATUS = "new"


def evaluate_survey(
    survey: str | os.PathLike[str], truth_path: str | os.PathLike[str], min_iou: float = 0.3
) -> dict[str, Any]:
    """Scores of a survey folder (``ROOT/DATE``).

    Sites present at the date (truth status other than ``disappeared``) are matched one to one
    with the survey's detections (IoU >= ``min_iou``): precision, recall, F1, as
    ``wastewatch eval``. Each matched site's status is compared with the truth's; a truth
    ``disappeared`` site is matched against the survey's ``changes.geojson`` (reported as
    ``disappeared`` or ``not_observed``, or ``missing`` when not reported).

    Returns:
        The object metrics plus ``status_agreement`` (share of detected truth sites, vanished
        ones included, whose status is right) and ``status_confusion``
        (``{truth status: {survey status: count}}``).
    """
    folder = Path(survey)
    detections = folder / "detections.geojson"
    scores = evaluate_detections(detections, truth_path, min_iou)
    truth = read_vectors(truth_path, "truth")
    if "status" not in truth.columns:
        truth["status"] = DEFAULT_STATUS
    pred = read_vectors(detections, "detections", allow_empty=True)
    changes = read_vectors(folder / "changes.geojson", "changes", allow_empty=True)
    c = truth.to_crs(4326).union_all().centroid
    crs = utm_crs_for(c.x, c.y)
    confusion: dict[str, dict[str, int]] = {}

    def count(truth_status: str, survey_status: str) -> None:
        row = confusion.setdefault(truth_status, {})
        row[survey_status] = row.get(survey_status, 0) + 1

    present = truth[truth["status"].astype(str) != "disappeared"].to_crs(crs)
    gone = truth[truth["status"].astype(str) == "disappeared"].to_crs(crs)
    p = pred.to_crs(crs) if len(pred) else pred
    for i, j, _ in match_polygons(
        list(p.geometry.make_valid()) if len(p) else [],
        list(present.geometry.make_valid()),
        min_iou,
    ):
        count(str(present["status"].iloc[j]), str(p["status"].iloc[i]))
    ch = changes.to_crs(crs) if len(changes) else changes
    found = {
        j: str(ch["status"].iloc[i])
        for i, j, _ in match_polygons(
            list(ch.geometry.make_valid()) if len(ch) else [],
            list(gone.geometry.make_valid()),
            min_iou,
        )
    }
    for j in range(len(gone)):
        count("disappeared", found.get(j, "missing"))
    total = sum(sum(r.values()) for r in confusion.values())
    right = sum(r.get(t, 0) for t, r in confusion.items())
    return {
        **scores,
        "status_agreement": round(right / total, 4) if total else 0.0,
        "status_compared": total,
        "status_confusion": {t: dict(sorted(r.items())) for t, r in sorted(confusion.items())},
    }
