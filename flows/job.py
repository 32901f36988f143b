"""The AOI-job flow: plan, infer on Ray, extract detections, record provenance, publish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Task, flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from pipeline.errors import WastewatchError
from pipeline.job import JobPlan, JobRequest, extract_detections, infer, plan_job
from pipeline.job.execute import ExecStats
from pipeline.job.provenance import write_provenance
from pipeline.job.publish import resume_key, staging
from pipeline.job.run import cogs, report

from .states import bad_input

__all__ = ["aoi_job", "retried", "transient"]


def transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a failed task only for failures that may pass (a lost node, a full disk), never
    for bad input: a ``WastewatchError`` would fail again, after redoing the whole step."""
    try:
        state.result(raise_on_failure=True)
    except WastewatchError:
        return False
    except Exception:
        return True
    return False


# Tasks pass plans and paths, never pixels; results are not cached or persisted: a resumed job
# is pipeline's business (tile ids), not Prefect's.
_task = task(cache_policy=NO_CACHE, persist_result=False)


@_task
def plan(request: JobRequest) -> JobPlan:
    return plan_job(request)


#: a task that may be retried once, for failures that may pass (see :func:`transient`)
retried = task(
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=transient,
)


@retried
def run_inference(job: JobPlan, stage: str) -> ExecStats:
    return infer(job, stage)


@_task
def rasters(job: JobPlan, stage: str) -> None:
    cogs(job, stage)


@_task
def detections(job: JobPlan, stage: str) -> int:
    return extract_detections(job, stage)


@_task
def provenance(job: JobPlan, stage: str, stats: ExecStats, count: int) -> str:
    return str(write_provenance(job, stage, stats, count))


@_task
def job_report(job: JobPlan, stage: str, stats: ExecStats) -> str:
    return str(report(job, stage, stats))


@flow(name="aoi-job", log_prints=True)
def aoi_job(request: JobRequest, planned: JobPlan | None = None) -> str:
    """Run one area-of-interest job; returns the output folder once it is published.

    Args:
        request: the job's parameters (the schema the CLI and deployments share).
        planned: the plan, when the caller already made it (the CLI plans before starting
            Prefect, so bad input is reported at once); deployments leave it out.

    Bad input ends the run ``Failed`` with the one-line reason as the state's message (see
    :mod:`flows.states`); a direct call raises the :class:`WastewatchError`.
    """
    try:
        return _aoi_job(request, planned)
    except WastewatchError as exc:
        # Prefect makes a returned state the run's final state (see flows.states)
        return bad_input(exc)  # type: ignore[return-value]


def _aoi_job(request: JobRequest, planned: JobPlan | None) -> str:
    job: JobPlan = (
        planned if planned is not None and planned.request == request else plan(request)  # type: ignore[assignment]
    )
    with staging(request.out, request.overwrite, resume_key(job), request.resume) as stage:
        stats = run_inference(job, str(stage))
        # the COGs (GDAL, the GIL released) in the task runner's thread beside the sites,
        # the quicklook and the report (see pipeline.job.run.finish_outputs)
        written = rasters.submit(job, str(stage))
        try:
            count = detections(job, str(stage))
            job_report(job, str(stage), stats)
        finally:
            written.wait()  # never leave the folder with a writer still in it
        written.result()
        provenance(job, str(stage), stats, count)
    return str(Path(request.out))
