"""``wastewatch submit``: one AOI job on the Prefect server's ``aoi-job`` deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import job_options

__all__ = ["submit_cmd"]


@click.command("submit")
@job_options
@click.option(
    "--no-wait", is_flag=True, help="Print the flow run's id and UI link, and return at once."
)
@click.pass_context
def submit_cmd(ctx: click.Context, no_wait: bool, **params: Any) -> None:
    """Run an AOI job (the options of `run`) on the Prefect server, through the `aoi-job`
    deployment that `wastewatch serve` serves, and wait for it: exit 0 with its outputs, 2 on
    bad input (the reason in one line), 1 on a failure.

    Paths are made absolute: the serving machine must see the same files (a shared file
    system, or GDAL URIs).
    """
    from ..job.request import JobRequest

    request = JobRequest.parse(**params)  # the request of `run`, checked here
    from flows.settings import prefect_environment

    prefect_environment()
    from flows.deploy import flow_run_url, submit_job
    from flows.states import bad_input_reason

    run = submit_job(request, wait=not no_wait)
    url = flow_run_url(run.id)
    if no_wait:
        click.echo(f"flow run {run.id} ({run.name})")
        click.echo(url)
        return
    state = run.state
    if state is not None and state.is_completed():
        out = Path(request.out)
        if (out / "run.json").is_file():
            from .run import print_outputs

            print_outputs(out)
        else:  # written on the serving machine only
            click.echo(f"outputs in {out}/ (on the serving machine)")
        return
    reason = bad_input_reason(state)
    if reason is not None:
        from ..errors import InputError

        raise InputError(reason)
    ended = state.type.value.lower() if state is not None else "unknown"
    message = " ".join(((state.message if state is not None else None) or "").split())
    click.echo(
        f"wastewatch: internal error: flow run {run.name} {ended}: {message or 'no message'} "
        f"(logs: {url})",
        err=True,
    )
    ctx.exit(1)
