"""The AOI-job flow: plan, infer on Ray, extract detections, record provenance, publish."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pipeline.execute import ExecStats
from pipeline.job import JobPlan, JobRequest, extract_detections, infer, plan_job, write_provenance
from pipeline.publish import staging

__all__ = ["aoi_job"]

# Tasks pass plans and paths, never pixels; results are not cached or persisted: a resumed job
# is pipeline's business (tile ids), not Prefect's.
_task = task(cache_policy=NO_CACHE, persist_result=False)


@_task
def plan(request: JobRequest) -> JobPlan:
    return plan_job(request)


@task(cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=5)
def run_inference(job: JobPlan, stage: str) -> ExecStats:
    return infer(job, stage)


@_task
def detections(job: JobPlan, stage: str) -> int:
    return extract_detections(job, stage)


@_task
def provenance(job: JobPlan, stage: str, stats: ExecStats, count: int) -> str:
    return str(write_provenance(job, stage, stats, count))


@flow(name="aoi-job", log_prints=True)
def aoi_job(
    aoi: str,
    scenes: list[str],
    model: str,
    out: str,
    select: list[str] | None = None,
    tile_size: int = 1024,
    threshold: float = 0.5,
    min_area_m2: float = 50.0,
    crs: str | None = None,
    ray_address: str | None = None,
    executor: Literal["ray", "local"] = "ray",
    actors: int | None = None,
    overwrite: bool = False,
    survey_date: str | None = None,
) -> str:
    """Run one area-of-interest job (parameters as ``pipeline.job.JobRequest``); returns the
    output folder once it is published."""
    request = JobRequest(
        aoi=aoi,
        scenes=tuple(scenes),
        model=model,
        out=out,
        select=tuple(select or ()),
        tile_size=tile_size,
        threshold=threshold,
        min_area_m2=min_area_m2,
        crs=crs,
        ray_address=ray_address,
        executor=executor,
        actors=actors,
        overwrite=overwrite,
        survey_date=survey_date,
    )
    job = plan(request)
    with staging(request.out, request.overwrite) as stage:
        stats = run_inference(job, str(stage))
        count = detections(job, str(stage))
        provenance(job, str(stage), stats, count)
    return str(Path(request.out))
