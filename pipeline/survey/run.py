"""A survey as plain functions: plan, one AOI job per municipality, then the region step.

``run_survey`` runs them in this process (jobs in threads over one Ray session); the ``survey``
flow in ``flows.survey`` wires the same functions as Prefect tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
from pyproj import CRS

from models import read_card

from ..cluster import cpu_actors_per_job, ray_session
from ..errors import InputError, NoOverlapError
from ..geo import CODE_FIELDS, NAME_FIELDS, read_vectors, select_features, utm_crs_for
from ..job.provenance import RUN_JSON, input_sha256
from ..job.request import JobRequest
from ..job.run import run_job
from ..report.survey import write_survey_report
from ..version import code_version
from .changes import ChangeResult
from .layout import SURVEY_JSON, job_complete, previous_survey, remove_stale_staging
from .region import JobOutput, gpkg_timestamp, merge_jobs, region_changes, write_region_layers
from .registry import SurveyRecord, write_registry
from .request import SurveyRequest
from .scenes import DatedScene, scenes_for_date

__all__ = [
    "SurveyPlan",
    "finish_survey",
    "plan_survey",
    "prepare_folder",
    "read_municipalities",
    "run_municipality",
    "run_survey",
    "survey_records",
]

log = logging.getLogger("wastewatch")


@dataclass
class SurveyPlan:
    """A checked survey request.

    Attributes:
        request: what was asked.
        folder: ``ROOT/DATE``.
        names: municipality code -> name, in code order.
        scenes: the imagery of the date, newest first.
        previous: the survey compared with, or None (the first survey of the region).
        model_hash: the model's content hash (a job is complete only for the same model).
        crs: the CRS of the region's layers (the UTM zone of the region).
        resolution: the model's GSD, metres.
        timings: seconds per step.
    """

    request: SurveyRequest
    folder: Path
    names: dict[str, str | None]
    scenes: list[DatedScene]
    previous: Path | None
    model_hash: str
    crs: CRS
    resolution: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def date(self) -> dt.date:
        """The survey date (``plan_survey`` plans dated requests only)."""
        if self.request.date is None:
            raise InputError("a survey plan needs a dated request: give --date YYYY-MM-DD")
        return self.request.date

    def jobs(self) -> list[JobRequest]:
        """One AOI job per municipality, in code order."""
        scenes = tuple(s.path for s in self.scenes)
        return [
            self.request.job(code, scenes, str(self.folder / "jobs" / code)) for code in self.names
        ]


def read_municipalities(request: SurveyRequest) -> tuple[gpd.GeoDataFrame, dict[str, str | None]]:
    """The municipalities a survey covers (``select`` applied) and their names by code.

    Raises:
        WastewatchError: the file cannot be read, a selected code is missing, or the features
            have no code attribute (jobs are named after it).
    """
    frame = read_vectors(request.municipalities, "municipalities")
    frame = select_features(frame, list(request.select), "municipalities")
    code_field = next((f for f in CODE_FIELDS if f in frame.columns), None)
    if code_field is None:
        raise InputError(
            f"municipalities {request.municipalities} have no code attribute (looked for "
            f"{', '.join(CODE_FIELDS)}): add one, jobs are named after it"
        )
    name_field = next((f for f in NAME_FIELDS if f in frame.columns), None)
    names = {
        str(row[code_field]): (str(row[name_field]) if name_field else None)
        for _, row in frame.iterrows()
    }
    return frame, names


def plan_survey(request: SurveyRequest) -> SurveyPlan:
    """Check every input of a survey: municipalities and codes, imagery for the date, the
    previous survey, the model. All bad input is reported here, before any job starts."""
    if request.date is None:
        raise InputError("a survey needs a date: give --date YYYY-MM-DD")
    start = time.perf_counter()
    frame, names = read_municipalities(request)
    scenes = scenes_for_date(list(request.scenes), request.date, request.max_age_days)
    root = Path(request.out)
    previous = previous_survey(root, request.date, request.previous)
    card = read_card(request.model)
    centre = frame.to_crs(4326).union_all().centroid
    plan = SurveyPlan(
        request,
        root / request.date.isoformat(),
        dict(sorted(names.items())),
        scenes,
        previous,
        card.content_hash,
        utm_crs_for(centre.x, centre.y),
        card.gsd_m,
    )
    plan.timings["plan_s"] = round(time.perf_counter() - start, 3)
    log.info(
        "survey %s of %d municipalities with %d scene(s); previous: %s",
        request.date.isoformat(),
        len(names),
        len(scenes),
        previous.name if previous else "none",
    )
    return plan


def prepare_folder(plan: SurveyPlan) -> None:
    """Create ``ROOT/DATE`` and remove the region's half-written staging folder a killed run
    left; finished jobs stay, and unfinished ones keep their finished tiles (each job's staging
    folder is named after its inputs and continued by ``--resume``, see
    ``pipeline.job.publish.staging``). Call once, before the jobs start."""
    plan.folder.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(plan.folder)


def run_municipality(plan: SurveyPlan, job: JobRequest) -> JobOutput | None:
    """The job of one municipality, unless it is already complete. None when no imagery of
    the date covers it (its earlier sites become ``not_observed``)."""
    code = Path(job.out).name
    output = JobOutput(code, Path(job.out))
    if job_complete(job, plan.model_hash):
        log.info("municipality %s: complete, kept", code)
        return output
    update: dict[str, object] = {"overwrite": True}
    if job.executor == "ray" and job.actors is None:
        # jobs running side by side share the cluster's CPUs rather than each taking them all
        update["actors"] = cpu_actors_per_job(plan.request.concurrency)
    try:
        run_job(job.model_copy(update=update))
    except NoOverlapError:
        log.info("municipality %s: no imagery for the date", code)
        return None
    log.info("municipality %s: done", code)
    return output


def survey_records(root: Path, crs: CRS) -> list[SurveyRecord]:
    """Every published survey under ``root``, for the registry."""
    from ..geo import read_vectors as read
    from .layout import survey_dates
    from .region import CHANGES_GEOJSON

    records = []
    for date in survey_dates(root):
        folder = root / date.isoformat()
        doc = json.loads((folder / SURVEY_JSON).read_text())
        records.append(
            SurveyRecord(
                date,
                read(folder / "detections.gpkg", "detections", allow_empty=True).to_crs(crs),
                read(folder / CHANGES_GEOJSON, "changes", allow_empty=True).to_crs(crs),
                dict(doc.get("merged", {})),
            )
        )
    return records


def _provenance(
    plan: SurveyPlan, outputs: list[JobOutput | None], result: ChangeResult
) -> dict[str, Any]:
    r = plan.request
    done = {o.code: o for o in outputs if o is not None}
    counts = Counter(result.current["status"]) + Counter(result.changes["status"])
    return {
        "schema_version": 1,
        "date": plan.date.isoformat(),
        "wastewatch": code_version(),
        "python": platform.python_version(),
        "inputs": {
            "municipalities": {
                "path": r.municipalities,
                "sha256": input_sha256(r.municipalities),
                "select": list(r.select),
            },
            "scenes": [{"path": s.path, "acquired": s.acquired.isoformat()} for s in plan.scenes],
            "model": {"path": r.model, "content_hash": plan.model_hash},
        },
        "parameters": r.model_dump(
            mode="json", exclude={"municipalities", "scenes", "model", "date", "out"}
        ),
        "previous": plan.previous.name if plan.previous else None,
        "municipalities": {
            code: {
                "name": name,
                "job": f"jobs/{code}" if code in done else None,
                "run_json_sha256": input_sha256(str(done[code].folder / RUN_JSON))
                if code in done
                else None,
            }
            for code, name in plan.names.items()
        },
        "sites": len(result.current),
        "counts_by_status": dict(sorted(counts.items())),
        "merged": dict(sorted(result.merged.items())),
        "timings_s": dict(plan.timings),
    }


def finish_survey(plan: SurveyPlan, outputs: list[JobOutput | None]) -> Path:
    """Merge the jobs, compare with the previous survey, publish the region's files into
    ``ROOT/DATE`` (``survey.json`` last: a survey without it is incomplete), and rebuild the
    registry. Returns ``ROOT/DATE``."""
    start = time.perf_counter()
    done = [o for o in outputs if o is not None]
    current = merge_jobs(done, plan.crs)
    result = region_changes(current, plan.previous, done, plan.date, plan.request.change_threshold)
    stage = Path(tempfile.mkdtemp(prefix=".region.partial-", dir=plan.folder))
    try:
        files = write_region_layers(result, stage, plan.date, plan.resolution)
        files.append(
            write_survey_report(
                stage / "report.html",
                region=Path(plan.request.out).name,
                date=plan.date,
                sites=result.current,
                changes=result.changes,
                municipalities=plan.names,
                jobs={o.code: f"jobs/{o.code}" for o in done},
                scenes=[s.path for s in plan.scenes],
                previous=plan.previous.name if plan.previous else None,
            )
        )
        plan.timings["region_s"] = round(time.perf_counter() - start, 3)
        (stage / SURVEY_JSON).write_text(
            json.dumps(_provenance(plan, outputs, result), indent=2) + "\n"
        )
        for f in [*files, stage / SURVEY_JSON]:
            os.replace(f, plan.folder / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    root = plan.folder.parent
    with gpkg_timestamp(plan.date):
        write_registry(root, survey_records(root, plan.crs), plan.crs)
    log.info(
        "survey %s: %d sites (%s)",
        plan.date.isoformat(),
        len(result.current),
        ", ".join(f"{k} {v}" for k, v in sorted(Counter(result.current["status"]).items())),
    )
    return plan.folder


def run_survey(request: SurveyRequest, plan: SurveyPlan | None = None) -> Path:
    """Plan (unless given the plan), run the municipality jobs (``concurrency`` at a time, one
    Ray session for all), then the region step. Returns ``ROOT/DATE``."""
    plan = plan or plan_survey(request)
    prepare_folder(plan)
    start = time.perf_counter()
    session = ray_session(request.ray_address) if request.executor == "ray" else nullcontext()
    with session, ThreadPoolExecutor(max_workers=request.concurrency) as pool:
        outputs = list(pool.map(lambda job: run_municipality(plan, job), plan.jobs()))
    plan.timings["jobs_s"] = round(time.perf_counter() - start, 3)
    return finish_survey(plan, outputs)
