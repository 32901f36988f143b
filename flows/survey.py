"""The survey flow: plan, one task per municipality (several at a time, one Ray session),
then the region step; artifacts for the Prefect UI."""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.cluster import ray_session
from pipeline.errors import WastewatchError
from pipeline.job import JobRequest
from pipeline.report.summary import artifact_key, survey_markdown, survey_table
from pipeline.survey import SurveyPlan, SurveyRequest, finish_survey, plan_survey, run_municipality
from pipeline.survey.region import JobOutput
from pipeline.survey.run import prepare_folder

from .job import retried
from .states import bad_input

__all__ = ["scheduled_date", "survey", "survey_with_concurrency"]

_task = task(cache_policy=NO_CACHE, persist_result=False)


@_task
def plan(request: SurveyRequest) -> SurveyPlan:
    return plan_survey(request)


@retried
def municipality(survey_plan: SurveyPlan, job: JobRequest) -> JobOutput | None:
    return run_municipality(survey_plan, job)


@_task
def region(survey_plan: SurveyPlan, outputs: list[JobOutput | None]) -> str:
    return str(finish_survey(survey_plan, outputs))


@_task
def artifacts(folder: str) -> None:
    path = Path(folder)
    name = path.parent.name
    create_table_artifact(
        survey_table(path), key=artifact_key(name, "sites"), description="Sites by rank"
    )
    create_markdown_artifact(survey_markdown(path), key=artifact_key(name, "summary"))
    create_link_artifact(
        (path / "report.html").resolve().as_uri(),
        link_text=f"report of {path.name}",
        key=artifact_key(name, "report"),
    )


def scheduled_date(timezone: str) -> dt.date:
    """The date of this flow run's scheduled start in ``timezone`` (outside a flow run, or for a
    run without a scheduled time: today there)."""
    from prefect.runtime import flow_run

    start = flow_run.scheduled_start_time or dt.datetime.now(dt.UTC)
    return start.astimezone(ZoneInfo(timezone)).date()


@flow(name="survey", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2))  # type: ignore[arg-type]
def survey(request: SurveyRequest, planned: SurveyPlan | None = None, timezone: str = "UTC") -> str:
    """Survey every municipality of a region for one date; returns ``ROOT/DATE``.

    Each municipality is a task named after its code; ``request.concurrency`` of them run at a
    time (see :func:`survey_with_concurrency`).

    Args:
        request: the survey's parameters. A scheduled deployment leaves ``date`` out: each run
            surveys the date of its scheduled start in ``timezone``.
        planned: the plan, when the caller already made it (the CLI).
        timezone: IANA timezone of the schedule, for an undated request.

    Bad input ends the run ``Failed`` with the one-line reason as the state's message (see
    :mod:`flows.states`); a direct call raises the :class:`WastewatchError`.
    """
    if request.date is None:
        request = request.on(scheduled_date(timezone))
        print(f"survey date {request.date} (the scheduled start in {timezone})")
    try:
        return _survey(request, planned)
    except WastewatchError as exc:
        # Prefect makes a returned state the run's final state (see flows.states)
        return bad_input(exc)  # type: ignore[return-value]


def _survey(request: SurveyRequest, planned: SurveyPlan | None) -> str:
    survey_plan: SurveyPlan = (
        planned if planned is not None and planned.request == request else plan(request)  # type: ignore[assignment]
    )
    prepare_folder(survey_plan)
    session = ray_session(request.ray_address) if request.executor == "ray" else nullcontext()
    with session:
        futures = [
            municipality.with_options(name=f"municipality-{Path(job.out).name}").submit(
                survey_plan, job
            )
            for job in survey_plan.jobs()
        ]
        outputs = [f.result() for f in futures]
    folder = region(survey_plan, outputs)
    artifacts(folder)
    return folder


def survey_with_concurrency(request: SurveyRequest, planned: SurveyPlan | None = None) -> str:
    """Run :func:`survey` with ``request.concurrency`` municipality tasks at a time."""
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=request.concurrency)
    return str(survey.with_options(task_runner=runner)(request, planned=planned))  # type: ignore[arg-type]
