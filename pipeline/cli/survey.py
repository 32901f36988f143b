"""``wastewatch survey``: every municipality of a region for one date, compared with the last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

__all__ = ["survey_cmd"]


def _field(name: str) -> Any:
    from ..survey.request import SurveyRequest

    return SurveyRequest.model_fields[name]


@click.command("survey")
@click.option(
    "--municipalities",
    required=True,
    type=click.Path(),
    help="Municipality polygons of the region (with a code attribute, e.g. com_istat_code).",
)
@click.option(
    "--select", multiple=True, help="Municipality code to survey (repeatable; default all)."
)
@click.option(
    "--scenes",
    required=True,
    multiple=True,
    help="Scene file, folder or glob pattern (repeatable); each date uses what was acquired by it.",
)
@click.option("--model", required=True, type=click.Path(), help="Checkpoint folder.")
@click.option("--date", required=True, help="Survey date, YYYY-MM-DD.")
@click.option("--out", required=True, type=click.Path(), help="Region folder (ROOT).")
@click.option(
    "--previous", default=None, help="Survey to compare with: a date under ROOT or a folder."
)
@click.option(
    "--max-age",
    "max_age_days",
    type=int,
    default=_field("max_age_days").default,
    show_default=True,
    help="Oldest imagery used, in days before the date.",
)
@click.option(
    "--change-threshold",
    type=float,
    default=_field("change_threshold").default,
    show_default=True,
    help="Relative area change from which a site is grown or shrunk.",
)
@click.option(
    "--concurrency",
    type=int,
    default=_field("concurrency").default,
    show_default=True,
    help="Municipality jobs at a time.",
)
@click.option("--tile-size", type=int, default=_field("tile_size").default, show_default=True)
@click.option("--threshold", type=float, default=_field("threshold").default, show_default=True)
@click.option(
    "--min-area",
    "min_area_m2",
    type=float,
    default=_field("min_area_m2").default,
    show_default=True,
)
@click.option("--ray-address", default=None, help="Ray cluster address (default: a local Ray).")
@click.option("--executor", type=click.Choice(["ray", "local"]), default="ray", show_default=True)
@click.option("--no-prefect", is_flag=True, help="Run the steps directly, without a Prefect flow.")
def survey_cmd(no_prefect: bool, **params: Any) -> None:
    """Survey a region: one job per municipality, region-wide sites with statuses (new, grown,
    persisting, shrunk; disappeared and not observed), the site registry and a report."""
    from ..survey.request import SurveyRequest
    from ..survey.run import plan_survey, run_survey

    request = SurveyRequest.parse(**params)
    plan = plan_survey(request)  # bad input reported before Prefect or Ray start
    if no_prefect:
        folder = run_survey(request, plan)
    else:
        from flows.settings import prefect_environment

        prefect_environment()
        from flows.survey import survey_with_concurrency

        folder = Path(survey_with_concurrency(request, planned=plan))
    info = json.loads((Path(folder) / "survey.json").read_text())
    click.echo(f"survey in {folder}/")
    click.echo(f"  report.html          inspection list ({info['sites']} sites)")
    click.echo("  detections.geojson   sites with status, EPSG:4326")
    click.echo("  changes.geojson      earlier sites not found again")
    click.echo("  ../registry.gpkg     every site ever seen")
    counts = ", ".join(f"{n} {s}" for s, n in info["counts_by_status"].items())
    click.echo(f"statuses: {counts or 'no sites'}")
