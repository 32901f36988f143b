"""The ``wastewatch`` command line: argument parsing around :mod:`pipeline` functions.

Imports of the heavy stack (torch, Ray, Prefect) happen inside the commands so that
``wastewatch --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["cli", "main"]

log = logging.getLogger("wastewatch")


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def state_dir() -> Path:
    """The project-local state folder (Prefect's database, ...): ``$WASTEWATCH_STATE_DIR`` or
    ``./.wastewatch``."""
    return Path(os.environ.get("WASTEWATCH_STATE_DIR", ".wastewatch")).absolute()


def prefect_environment() -> None:
    """Point Prefect's ephemeral mode at the state folder, unless the operator configured it."""
    home = state_dir() / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def cli(quiet: bool) -> None:
    """wastewatch: find suspected illegal landfills in VHR imagery.

    Tiles scenes, runs fully convolutional models on Ray, and writes georeferenced probability
    and mask COGs plus ranked site polygons (GeoJSON, GeoPackage).
    """
    _setup_logging(quiet)


@cli.group()
def synth() -> None:
    """Synthetic VHR scenes with planted landfill sites, for demos and tests."""


@synth.command("scene")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--aoi", type=click.Path(), default=None, help="AOI vector file the scene covers.")
@click.option("--select", multiple=True, help="Code of an AOI feature to keep (repeatable).")
@click.option(
    "--size",
    type=int,
    default=1024,
    show_default=True,
    help="Side of the scene in pixels when no AOI is given.",
)
@click.option("--gsd", type=float, default=0.5, show_default=True, help="Metres per pixel.")
@click.option("--crs", default=None, help="Scene CRS, EPSG:N (default: the AOI's UTM zone).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--landfills", type=int, default=20, show_default=True, help="Sites to plant.")
@click.option("--date", default="2026-06-15", show_default=True, help="Acquisition date tag.")
def synth_scene_cmd(
    out: str,
    aoi: str | None,
    select: tuple[str, ...],
    size: int,
    gsd: float,
    crs: str | None,
    seed: int,
    landfills: int,
    date: str,
) -> None:
    """Write OUT/scene.tif, OUT/truth.geojson (planted sites) and OUT/aoi.geojson."""
    from .synth import synth_scene

    r = synth_scene(
        out,
        aoi=aoi,
        select=list(select),
        size=size,
        gsd=gsd,
        crs=crs,
        seed=seed,
        landfills=landfills,
        date=date,
    )
    click.echo(
        f"scene  {r.scene}  ({r.grid.width} x {r.grid.height} px, {r.grid.crs.to_string()}, "
        f"{gsd} m)"
    )
    click.echo(f"truth  {r.truth}  ({r.n_sites} sites)")
    click.echo(f"aoi    {r.aoi}")


@cli.command("train")
@click.option("--arch", type=click.Choice(["patch"]), default="patch", show_default=True)
@click.option(
    "--scenes",
    "scenes",
    required=True,
    multiple=True,
    type=click.Path(),
    help="Training scene (repeatable; pairs with --labels in order).",
)
@click.option(
    "--labels",
    "labels",
    required=True,
    multiple=True,
    type=click.Path(),
    help="Label polygons with a 'class' attribute (repeatable).",
)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint folder to write.")
@click.option("--epochs", type=int, default=6, show_default=True)
@click.option("--patch-size", type=int, default=32, show_default=True)
@click.option("--samples", type=int, default=3000, show_default=True, help="Patches per class.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_cmd(
    arch: str,
    scenes: tuple[str, ...],
    labels: tuple[str, ...],
    out: str,
    epochs: int,
    patch_size: int,
    samples: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> None:
    """Train a model on labelled scenes and save it as a checkpoint (safetensors + JSON card)."""
    from .training import train_patch_model

    nan = float("nan")
    card = train_patch_model(
        list(scenes),
        list(labels),
        out,
        patch_size=patch_size,
        epochs=epochs,
        per_class=samples,
        seed=seed,
        batch_size=batch_size,
        lr=lr,
    )
    click.echo(
        f"model  {out}  ({card.model_id}; validation accuracy "
        f"{card.metrics.get('accuracy', nan):.3f}, F1 {card.metrics.get('f1', nan):.3f})"
    )


@cli.command("run")
@click.option("--aoi", required=True, type=click.Path(), help="Area of interest (any CRS).")
@click.option("--select", multiple=True, help="Code of an AOI feature to keep (repeatable).")
@click.option(
    "--scenes", required=True, multiple=True, type=click.Path(), help="Scene (repeatable)."
)
@click.option("--model", required=True, type=click.Path(), help="Checkpoint folder.")
@click.option("--out", required=True, type=click.Path(), help="Output folder (must not exist).")
@click.option("--ray-address", default=None, help="Ray cluster address (default: a local Ray).")
@click.option("--tile-size", type=int, default=1024, show_default=True, help="Tile core, pixels.")
@click.option("--threshold", type=float, default=0.5, show_default=True)
@click.option(
    "--min-area",
    "min_area",
    type=float,
    default=50.0,
    show_default=True,
    help="Smallest site kept, m².",
)
@click.option("--crs", default=None, help="Output CRS, EPSG:N (default: the AOI's UTM zone).")
@click.option("--date", "survey_date", default=None, help="Survey date written into detections.")
@click.option(
    "--executor",
    type=click.Choice(["ray", "local"]),
    default="ray",
    show_default=True,
    help="'local' runs every tile in this process (debugging).",
)
@click.option("--actors", type=int, default=None, help="Model actors (default: one per GPU, or 1).")
@click.option("--overwrite", is_flag=True, help="Replace --out once the new output is complete.")
@click.option("--no-prefect", is_flag=True, help="Run the steps directly, without a Prefect flow.")
def run_cmd(
    aoi: str,
    select: tuple[str, ...],
    scenes: tuple[str, ...],
    model: str,
    out: str,
    ray_address: str | None,
    tile_size: int,
    threshold: float,
    min_area: float,
    crs: str | None,
    survey_date: str | None,
    executor: str,
    actors: int | None,
    overwrite: bool,
    no_prefect: bool,
) -> None:
    """Run the AOI job: tiles -> Ray -> COG rasters -> ranked site polygons, as a Prefect flow."""
    from .job import JobRequest, plan_job, run_job

    params: dict[str, Any] = dict(
        aoi=aoi,
        select=tuple(select),
        scenes=tuple(scenes),
        model=model,
        out=out,
        ray_address=ray_address,
        tile_size=tile_size,
        threshold=threshold,
        min_area_m2=min_area,
        crs=crs,
        survey_date=survey_date,
        executor=executor,
        actors=actors,
        overwrite=overwrite,
    )
    request = JobRequest(**params)
    plan_job(request)  # every input checked before an orchestrator or cluster is started
    if no_prefect:
        run_job(request)
    else:
        prefect_environment()
        from flows.job import aoi_job

        params.update(select=list(select), scenes=list(scenes))
        aoi_job(**params)
    _print_outputs(Path(out))


def _print_outputs(out: Path) -> None:
    run = json.loads((out / "run.json").read_text())
    ex = run["execution"]
    click.echo(f"outputs in {out}/")
    for name, what in (
        ("probabilities.tif", "probability COG"),
        ("mask.tif", "class mask COG"),
        ("detections.geojson", f"{run['detections']} sites, EPSG:4326"),
        ("detections.gpkg", f"sites, {run['grid']['crs']}"),
        ("run.json", "provenance"),
    ):
        click.echo(f"  {name:<20} {what}")
    click.echo(
        f"{ex['tiles']} tiles, {ex['pixels'] / 1e6:.1f} Mpx in {ex['seconds']:.1f} s "
        f"({ex['megapixels_per_second']:.2f} Mpx/s, {ex['executor']}, {ex['device']})"
    )


@cli.command("eval")
@click.option(
    "--pred", required=True, type=click.Path(), help="Detections (e.g. detections.geojson)."
)
@click.option("--truth", required=True, type=click.Path(), help="Truth polygons.")
@click.option(
    "--min-iou",
    type=float,
    default=0.3,
    show_default=True,
    help="IoU from which a detection matches a truth site.",
)
def eval_cmd(pred: str, truth: str, min_iou: float) -> None:
    """Object-level precision, recall, F1 and mean IoU of matches, as JSON."""
    from .evaluate import evaluate_detections

    click.echo(json.dumps(evaluate_detections(pred, truth, min_iou), indent=2))


def main(argv: list[str] | None = None) -> None:
    """Entry point: exit 0 on success, 2 on bad input (one line on stderr), 1 on a failure."""
    from models.errors import WastewatchError

    try:
        cli.main(args=argv, prog_name="wastewatch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("wastewatch: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(f"wastewatch: error: {exc.format_message()} (see --help)", err=True)
        sys.exit(2)
    except WastewatchError as exc:
        click.echo(f"wastewatch: error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("wastewatch: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("WASTEWATCH_DEBUG"):
            raise
        click.echo(
            f"wastewatch: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(set WASTEWATCH_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(0)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


if __name__ == "__main__":
    main()
