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


@synth.command("revisit")
@click.option(
    "--like",
    required=True,
    type=click.Path(file_okay=False),
    help="A folder written by `synth scene` (or an earlier revisit).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seeds the changes.")
@click.option("--new", "new", type=int, default=None, help="New sites (default: a quarter).")
@click.option("--date", default=None, help="Acquisition date (default: a year later).")
def synth_revisit_cmd(like: str, out: str, seed: int, new: int | None, date: str | None) -> None:
    """The same area at a later date: sites persist, grow, shrink or vanish; some are new."""
    from .synth import synth_revisit

    r = synth_revisit(like, out, seed=seed, new=new, date=date)
    click.echo(f"scene  {r.scene}")
    click.echo(
        f"truth  {r.truth}  ({r.n_sites} sites present; property 'status' says what changed)"
    )


@cli.command("train")
@click.option(
    "--arch",
    type=click.Choice(["patch", "resnet", "fcn32s", "fcn16s", "fcn8s", "unet"]),
    default="patch",
    show_default=True,
)
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
    help="Labels with a 'class' attribute: polygons, or points/lines (sparse).",
)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint folder to write.")
@click.option("--epochs", type=int, default=6, show_default=True)
@click.option("--patch-size", type=int, default=None, help="Patch classifiers: patch side, px.")
@click.option(
    "--crop-size",
    type=int,
    default=256,
    show_default=True,
    help="Segmenters: side of the training crops, px.",
)
@click.option(
    "--samples",
    type=int,
    default=3000,
    show_default=True,
    help="Patches per class (classifiers) or crops (segmenters).",
)
@click.option(
    "--batch-size", type=int, default=None, help="Default 64 (classifiers), 8 (segmenters)."
)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Same seed, same weights (CPU)."
)
@click.option("--sparse", is_flag=True, default=None, help="Treat polygons as sparse labels too.")
@click.option(
    "--border-weight",
    type=float,
    default=0.0,
    show_default=True,
    help="Segmenters: w0 of the U-Net border weight map (0: off).",
)
@click.option(
    "--pixel-mask",
    type=float,
    default=0.0,
    show_default=True,
    help="Segmenters: fraction of labelled pixels dropped from each step's loss.",
)
@click.option("--resume", is_flag=True, help="Continue from the last finished epoch in --out.")
@click.option(
    "--staged",
    is_flag=True,
    help="fcn16s/fcn8s: train FCN-32s first, then each finer net from the coarser.",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Data-parallel workers on Ray Train (1: this process).",
)
@click.option("--ray-address", default=None, help="Ray cluster for the workers.")
def train_cmd(
    arch: str,
    scenes: tuple[str, ...],
    labels: tuple[str, ...],
    out: str,
    epochs: int,
    patch_size: int | None,
    crop_size: int,
    samples: int,
    batch_size: int | None,
    lr: float,
    seed: int,
    sparse: bool | None,
    border_weight: float,
    pixel_mask: float,
    resume: bool,
    staged: bool,
    workers: int,
    ray_address: str | None,
) -> None:
    """Train a model on labelled scenes; a checkpoint (safetensors + JSON card) every epoch."""
    from models import PATCH_CLASSIFIERS, TrainConfig

    from .training import DEFAULT_ARGS, train_model

    args = dict(DEFAULT_ARGS[arch])
    if patch_size is not None:
        if arch not in PATCH_CLASSIFIERS:
            raise click.UsageError("--patch-size applies to patch classifiers (patch, resnet)")
        args["patch_size"] = patch_size
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        seed=seed,
        batch_size=batch_size or (64 if arch in PATCH_CLASSIFIERS else 8),
        border_w0=border_weight,
        pixel_mask=pixel_mask,
    )
    card = train_model(
        arch,
        list(scenes),
        list(labels),
        out,
        arch_args=args,
        config=config,
        samples=samples,
        crop_size=crop_size,
        sparse=sparse,
        resume=resume,
        staged=staged,
        workers=workers,
        ray_address=ray_address,
    )
    nan = float("nan")
    m = card.metrics
    click.echo(
        f"model  {out}  ({card.model_id}; validation accuracy {m.get('accuracy', nan):.3f}, "
        f"F1 {m.get('f1', nan):.3f}, IoU {m.get('iou', nan):.3f})"
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
        ("quicklook.png", "picture with the sites outlined"),
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
