"""Where a region's surveys live, which one came before, and whether a job is complete."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..job.provenance import RUN_JSON, input_sha256
from ..job.request import JobRequest

__all__ = [
    "SURVEY_JSON",
    "job_complete",
    "previous_survey",
    "remove_stale_staging",
    "survey_dates",
]

SURVEY_JSON = "survey.json"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: job parameters that change what a job writes (the others say where and how it runs).
RESULT_PARAMETERS = (
    "select",
    "tile_size",
    "threshold",
    "min_area_m2",
    "crs",
    "survey_date",
    "confidence_high",
    "confidence_medium",
    "stride",
    "saliency",
)


def survey_dates(root: Path) -> list[dt.date]:
    """Dates of the published surveys under ``root`` (a ``survey.json`` in ``ROOT/DATE``)."""
    if not root.is_dir():
        return []
    dates = []
    for p in root.iterdir():
        if p.is_dir() and _DATE.match(p.name) and (p / SURVEY_JSON).is_file():
            try:
                dates.append(dt.date.fromisoformat(p.name))
            except ValueError:
                continue
    return sorted(dates)


def previous_survey(root: Path, date: dt.date, previous: str | None) -> Path | None:
    """The survey folder to compare a survey of ``date`` with.

    Raises:
        InputError: ``previous`` is not a survey folder (or a date without one under ROOT),
            or it is not earlier than ``date``; or ROOT holds a later survey than ``date``.
    """
    dates = survey_dates(root)
    later = [d for d in dates if d > date]
    if later:
        raise InputError(
            f"{root} already holds a later survey ({later[-1].isoformat()}) than "
            f"{date.isoformat()}: surveys of a region go forward in time; use another --out"
        )
    if previous is None:
        earlier = [d for d in dates if d < date]
        return root / earlier[-1].isoformat() if earlier else None
    folder = root / previous if _DATE.match(previous) else Path(previous)
    if not (folder / SURVEY_JSON).is_file() or not (folder / "detections.gpkg").is_file():
        raise InputError(
            f"--previous {previous} is not a survey: give a date of a survey under {root} "
            f"({', '.join(d.isoformat() for d in dates) or 'none yet'}) or a survey folder "
            "(one holding survey.json)"
        )
    when = dt.date.fromisoformat(json.loads((folder / SURVEY_JSON).read_text())["date"])
    if when >= date:
        raise InputError(
            f"--previous {previous} is dated {when.isoformat()}, not before this survey's date "
            f"{date.isoformat()}: compare with an earlier survey"
        )
    return folder


def _expected(request: JobRequest) -> dict[str, Any]:
    params = request.model_dump(mode="json")
    return {
        "aoi": input_sha256(request.aoi),
        "scenes": [(s, input_sha256(s)) for s in request.scenes],
        "parameters": {k: params[k] for k in RESULT_PARAMETERS},
    }


def job_complete(request: JobRequest, model_hash: str) -> bool:
    """Whether ``request.out`` holds a published job of the same inputs, model and parameters
    (a ``run.json`` that records them; a job folder exists only once it is complete)."""
    path = Path(request.out) / RUN_JSON
    if not path.is_file():
        return False
    try:
        run = json.loads(path.read_text())
        inputs = run["inputs"]
        recorded = {
            "aoi": inputs["aoi"]["sha256"],
            "scenes": [(s["path"], s["sha256"]) for s in inputs["scenes"]],
            "parameters": {k: run["parameters"].get(k) for k in RESULT_PARAMETERS},
        }
        same_model = inputs["model"]["content_hash"] == model_hash
    except (ValueError, KeyError, TypeError):
        return False
    expected = _expected(request)
    # the job records its scenes newest first; the request lists them in the same order
    return (
        same_model
        and recorded["aoi"] == expected["aoi"]
        and (sorted(recorded["scenes"]) == sorted(expected["scenes"]))
        and recorded["parameters"] == expected["parameters"]
    )


def remove_stale_staging(folder: Path) -> None:
    """Remove the staging folders a killed run left (``.NAME.partial-*``)."""
    if folder.is_dir():
        for p in folder.glob(".*partial-*"):
            shutil.rmtree(p, ignore_errors=True)
