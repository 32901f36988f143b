"""``wastewatch eval``: detections, or a whole survey, scored against truth polygons."""

from __future__ import annotations

import json

import click

__all__ = ["eval_cmd"]


@click.command("eval")
@click.option("--pred", type=click.Path(), default=None, help="Detections (detections.geojson).")
@click.option(
    "--survey",
    type=click.Path(file_okay=False),
    default=None,
    help="A survey folder (ROOT/DATE): adds the agreement of statuses with the truth's.",
)
@click.option("--truth", required=True, type=click.Path(), help="Truth polygons.")
@click.option(
    "--min-iou",
    type=float,
    default=0.3,
    show_default=True,
    help="IoU from which a detection matches a truth site.",
)
def eval_cmd(pred: str | None, survey: str | None, truth: str, min_iou: float) -> None:
    """Object-level precision, recall, F1 and mean IoU of matches, as JSON; with --survey
    also a confusion table of statuses (truth -> survey)."""
    if (pred is None) == (survey is None):
        raise click.UsageError("give exactly one of --pred FILE or --survey ROOT/DATE")
    from ..evaluation import evaluate_detections, evaluate_survey

    if survey is not None:
        from pathlib import Path

        from ..errors import InputError

        if not (Path(survey) / "detections.geojson").is_file():
            raise InputError(
                f"--survey {survey} is not a survey folder: give ROOT/DATE of a finished "
                "survey (it holds detections.geojson and changes.geojson)"
            )
        result = evaluate_survey(survey, truth, min_iou)
    else:
        assert pred is not None
        result = evaluate_detections(pred, truth, min_iou)
    click.echo(json.dumps(result, indent=2))
