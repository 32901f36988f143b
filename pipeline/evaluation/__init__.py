"""Scoring detections against truth: object-level matching, precision, recall, F1, IoU."""

from .objects import evaluate_detections, match_polygons, pixel_metrics
from .survey import evaluate_survey

__all__ = ["evaluate_detections", "evaluate_survey", "match_polygons", "pixel_metrics"]
