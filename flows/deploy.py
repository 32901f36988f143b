"""Deployments: one ``survey`` deployment per configured region on its cron schedule, and the
``aoi-job`` deployment for on-demand jobs, served against a Prefect server; submissions to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.types.entrypoint import EntrypointType

from pipeline.errors import InputError
from pipeline.job import JobRequest

from .config import RegionConfig, ServeConfig
from .job import aoi_job
from .survey import survey

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

__all__ = [
    "AOI_JOB",
    "flow_run_url",
    "job_deployment",
    "prefect_server",
    "serve",
    "submit_job",
    "survey_deployment",
]

#: the on-demand job deployment, as ``run_deployment`` names it.
AOI_JOB = "aoi-job/aoi-job"
_START_SERVER = (
    "start one with `prefect server start` (or infra/compose.yaml), then "
    "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
)


def prefect_server(why: str) -> str:
    """The Prefect API URL, once the server answers.

    Args:
        why: what needs the server, for the message (``"serve"``).

    Raises:
        InputError: no ``PREFECT_API_URL`` (Prefect's ephemeral mode keeps no schedules and
            serves no one else), or no server answers there.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise InputError(
            f"{why} needs a Prefect server (the ephemeral one keeps no schedules or "
            f"deployments) and PREFECT_API_URL is not set: {_START_SERVER}"
        )
    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        raise InputError(
            f"no Prefect server answers at PREFECT_API_URL={url} ({type(error).__name__}): "
            f"{_START_SERVER}"
        )
    return str(url)


def survey_deployment(region: RegionConfig) -> RunnerDeployment:
    """The ``survey`` deployment of a region: named after it, on its cron in its timezone, one
    run at a time (runs of a region write the same folders), ``concurrency`` municipality jobs
    at a time within a run."""
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=region.request.concurrency)
    return RunnerDeployment.from_flow(
        survey.with_options(task_runner=runner),  # type: ignore[arg-type]
        region.name,
        schedules=[Cron(region.cron, timezone=region.timezone)],
        parameters={
            "request": region.request.model_dump(mode="json"),
            "timezone": region.timezone,
        },
        concurrency_limit=1,
        description=f"Survey of {region.name}: every municipality, at {region.cron} "
        f"({region.timezone}); each run surveys its scheduled date.",
        tags=["wastewatch", "survey"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def job_deployment() -> RunnerDeployment:
    """The ``aoi-job`` deployment: on demand (``wastewatch submit``), no schedule."""
    return RunnerDeployment.from_flow(
        aoi_job,
        "aoi-job",
        description="One AOI job on demand: `wastewatch submit` (parameters: a JobRequest).",
        tags=["wastewatch", "aoi-job"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def serve(config: ServeConfig) -> None:
    """Serve the regions' survey deployments and the ``aoi-job`` deployment until interrupted.

    Schedules stay active when serving stops (``pause_on_shutdown=False``): a restart, or
    another ``serve`` of the same config, picks them up again.
    """
    from prefect import serve as prefect_serve

    deployments = [survey_deployment(r) for r in config.regions] + [job_deployment()]
    prefect_serve(
        *deployments,
        pause_on_shutdown=False,
        print_starting_message=False,
        limit=config.limit,
    )


def flow_run_url(flow_run_id: object) -> str:
    """The Prefect UI page of a flow run."""
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url or ""
    return f"{ui.rstrip('/')}/runs/flow-run/{flow_run_id}"


def submit_job(request: JobRequest, wait: bool = True) -> FlowRun:
    """Run the ``aoi-job`` deployment with ``request``; wait for the end unless ``wait`` is
    False. Returns the flow run (its ``state`` is final when waited for).

    Raises:
        InputError: no server (see :func:`prefect_server`), or no ``aoi-job`` deployment on it.
    """
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    url = prefect_server("submit")
    try:
        return run_deployment(  # type: ignore[return-value]
            AOI_JOB,
            parameters={"request": request.model_dump(mode="json")},
            timeout=None if wait else 0,
            poll_interval=2,
        )
    except ObjectNotFound:
        raise InputError(
            f"no {AOI_JOB} deployment on the Prefect server at {url}: start "
            "`wastewatch serve --config surveys.toml` (it serves aoi-job) against that server"
        ) from None
