"""``wastewatch run``: one AOI job, as a Prefect flow or directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .options import job_options

__all__ = ["print_outputs", "run_cmd"]


@click.command("run")
@job_options
@click.option("--no-prefect", is_flag=True, help="Run the steps directly, without a Prefect flow.")
def run_cmd(no_prefect: bool, **params: Any) -> None:
    """Run the AOI job: tiles -> Ray -> COG rasters -> ranked site polygons, as a Prefect flow."""
    from ..cluster import abandon_early_ray, start_ray_early
    from ..job.request import JobRequest

    request = JobRequest.parse(**params)
    if no_prefect and request.executor == "ray":
        # Ray starts while the job is planned (the planner's imports leave a core idle); its
        # paths are absolute (JobRequest), and nothing Ray says is shown unless the plan holds.
        # Not beside Prefect: its ephemeral server, started next, would start beside Ray's
        # processes (measured: past its start-up timeout on a busy 2-core machine)
        start_ray_early(request.ray_address)
    try:
        from ..job.plan import plan_job
        from ..job.run import run_job

        plan = plan_job(request)  # every input checked before the job's work starts
        if no_prefect:
            run_job(request, plan)
        else:
            from flows.settings import prefect_environment

            prefect_environment()
            from flows.job import aoi_job

            aoi_job(request, planned=plan)
    finally:
        abandon_early_ray()  # bad input, or no tile left to run: a Ray no session took
    print_outputs(Path(request.out))


def print_outputs(out: Path) -> None:
    """What a finished job wrote, one line per output, and its throughput."""
    run = json.loads((out / "run.json").read_text())
    ex = run["execution"]
    click.echo(f"outputs in {out}/")
    stride = run.get("heatmap", {}).get("stride_px")
    saliency = (
        [("saliency.tif", "Grad-CAM saliency COG (0..1 through its GDAL scale)")]
        if (out / "saliency.tif").exists()
        else []
    )
    for name, what in (
        (
            "probabilities.tif",
            "probability COG (0..1 through its GDAL scale)"
            + (f", heatmap every {stride} px" if stride else ""),
        ),
        ("mask.tif", "class mask COG with a colour table"),
        *saliency,
        ("detections.geojson", f"{run['detections']} sites, EPSG:4326"),
        ("detections.gpkg", f"sites, {run['grid']['crs']}, QGIS style inside"),
        ("*.qml", "QGIS styles beside the rasters and the GeoJSON"),
        ("quicklook.png", "picture with the sites outlined and labelled by rank"),
        ("report.html", "job report: summary, quicklook, sites by rank"),
        ("run.json", "provenance"),
    ):
        click.echo(f"  {name:<20} {what}")
    click.echo(
        f"{ex['tiles']} tiles, {ex['pixels'] / 1e6:.1f} Mpx in {ex['seconds']:.1f} s "
        f"({ex['megapixels_per_second']:.2f} Mpx/s, {ex['executor']}, {ex['device']})"
    )
