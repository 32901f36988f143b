"""``wastewatch eval``: detections scored against truth polygons."""

from __future__ import annotations

import json

import click

__all__ = ["eval_cmd"]


@click.command("eval")
@click.option(
    "--pred", required=True, type=click.Path(), help="Detections (e.g. detections.geojson)."
)
@click.option("--truth", required=True, type=click.Path(), help="Truth polygons.")
@click.option(
    "--min-iou",
    type=float,
    default=0.3,
    show_default=True,
    help="IoU from which a detection matches a truth site.",
)
def eval_cmd(pred: str, truth: str, min_iou: float) -> None:
    """Object-level precision, recall, F1 and mean IoU of matches, as JSON."""
    from ..evaluation import evaluate_detections

    click.echo(json.dumps(evaluate_detections(pred, truth, min_iou), indent=2))
