"""``wastewatch synth``: synthetic scenes and revisits."""

from __future__ import annotations

import click

from .options import aoi_options

__all__ = ["synth"]


@click.group()
def synth() -> None:
    """Synthetic VHR scenes with planted landfill sites, for demos and tests."""


@synth.command("scene")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@aoi_options(required=False)
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
    from ..synthetic import synth_scene

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
    from ..synthetic import synth_revisit

    r = synth_revisit(like, out, seed=seed, new=new, date=date)
    click.echo(f"scene  {r.scene}")
    click.echo(
        f"truth  {r.truth}  ({r.n_sites} sites present; property 'status' says what changed)"
    )
