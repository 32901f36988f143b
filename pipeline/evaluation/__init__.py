"""Scoring detections against truth: object-level matching, precision, recall, F1, IoU."""

from .objects import evaluate_detections, match_polygons

__all__ = ["evaluate_detections", "match_polygons"]
