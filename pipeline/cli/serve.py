"""``wastewatch serve``: the survey deployments of a config's regions and the aoi-job deployment,
served against a Prefect server."""

from __future__ import annotations

import os

import click

__all__ = ["serve_cmd"]


@click.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(),
    help="TOML file of regions, each with a cron schedule (see infra/surveys.example.toml).",
)
@click.option(
    "--check", is_flag=True, help="Check the config, print the deployments and exit (no server)."
)
def serve_cmd(config_path: str, check: bool) -> None:
    """Serve one `survey` deployment per region of --config, on its cron schedule, and the
    `aoi-job` deployment (for `wastewatch submit`), until interrupted.

    Needs a Prefect server in PREFECT_API_URL (schedules do not live in Prefect's ephemeral
    mode). Each scheduled run surveys the date of its scheduled start in the region's timezone.
    Stopping serve leaves the schedules active: the next serve picks them up.
    """
    # a service: Prefect's and the runs' log lines are the operator's view (unless set)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO")
    from flows.settings import prefect_environment

    prefect_environment()
    from flows.config import load_config

    config = load_config(config_path)  # every region checked before anything is served
    url = None
    if not check:
        from flows.deploy import prefect_server

        url = prefect_server("serve")
    for region in config.regions:
        click.echo(
            f"survey/{region.name}: {region.cron} ({region.timezone}), "
            f"{len(region.request.select) or 'all'} municipalities -> {region.request.out}"
        )
    click.echo("aoi-job/aoi-job: on demand (wastewatch submit)")
    if url is None:
        click.echo(f"{config.path}: {len(config.regions)} region(s), config OK")
        return
    from flows.deploy import serve

    click.echo(f"serving on {url} (Ctrl-C stops serving; the schedules stay active)")
    serve(config)
