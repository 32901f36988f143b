"""Revisits: the same synthetic landscape at a later date, its sites changed."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS
from rasterio.features import shapes
from shapely import affinity, union_all
from shapely.geometry import box, shape

from ..errors import InputError
from ..geo import GeoBox, read_vectors
from .landscape import Site
from .scene import SynthResult, _write_scene, _write_truth, make_sites

__all__ = ["synth_revisit"]


#: what happens to a site between two surveys, and how likely it is.
_FATES = (("persisting", 0.4), ("grown", 0.2), ("shrunk", 0.15), ("disappeared", 0.25))


def synth_revisit(
    like: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 1,
    new: int | None = None,
    date: str | None = None,
) -> SynthResult:
    """The area of ``like`` (a ``synth scene`` folder) at a later date.

    The landscape is the same but for crop colours; each earlier site persists, grows, shrinks
    or disappears, and new sites appear. ``truth.geojson`` lists the sites of the new date with
    ``status`` ``new``, ``persisting``, ``grown`` or ``shrunk`` (keeping their ``site_id``), and
    the vanished ones with ``status`` ``disappeared`` (their earlier outline).

    Args:
        like: folder written by :func:`synth_scene` (or an earlier revisit).
        out: output folder.
        seed: seeds the changes.
        new: new sites (default: a quarter of the earlier count, at least one).
        date: acquisition date (default: one year after the earlier scene).
    """
    src_dir = Path(like)
    scene = src_dir / "scene.tif"
    truth_file = src_dir / "truth.geojson"
    if not scene.is_file() or not truth_file.is_file():
        raise InputError(
            f"{src_dir} is not a `wastewatch synth scene` folder: it needs scene.tif "
            "and truth.geojson"
        )
    with rasterio.open(scene) as src:
        tags = src.tags()
        grid = GeoBox(src.width, src.height, src.transform, CRS.from_wkt(src.crs.to_wkt()))
    if "SYNTHETIC_SEED" not in tags:
        raise InputError(
            f"{scene} was not written by `wastewatch synth scene`: revisit needs its landscape seed"
        )
    land_seed = int(tags["SYNTHETIC_SEED"])
    season = int(tags.get("SYNTHETIC_SEASON", "0")) + 1
    old_date = dt.date.fromisoformat(tags.get("ACQUISITION_DATE", "2026-06-15"))
    date = date or old_date.replace(year=old_date.year + 1).isoformat()
    previous = read_vectors(truth_file, "truth").to_crs(grid.crs)
    previous = (
        previous[previous.get("status", "new") != "disappeared"]
        if "status" in previous
        else previous
    )
    rng = np.random.default_rng(seed)
    kept: list[Site] = []
    ids: list[str] = []
    status: list[str] = []
    gone: list[tuple[Site, str]] = []
    names = [f for f, _ in _FATES]
    weights = np.array([w for _, w in _FATES])
    for _, row in previous.iterrows():
        site = Site(row.geometry, str(row.get("style", "debris")))
        fate = str(rng.choice(names, p=weights / weights.sum()))
        sid = str(row.get("site_id"))
        if fate == "disappeared":
            gone.append((site, sid))
            continue
        if fate != "persisting":
            k = rng.uniform(1.25, 1.6) if fate == "grown" else rng.uniform(0.55, 0.8)
            grown = affinity.scale(site.geometry, k, k, origin=site.geometry.centroid)
            site = Site(grown, site.style)
        kept.append(site)
        ids.append(sid)
        status.append(fate)
    region = box(*grid.bounds).buffer(-30)
    with rasterio.open(scene) as src:  # new sites only where the earlier scene had imagery
        step = max(1, int(8 / grid.resolution))
        mask = src.dataset_mask(out_shape=(max(1, src.height // step), max(1, src.width // step)))
        t = src.transform * src.transform.scale(
            src.width / mask.shape[1], src.height / mask.shape[0]
        )
        valid = union_all([shape(g) for g, v in shapes(mask, mask=mask > 0, transform=t) if v])
    region = region.intersection(valid.buffer(-20))
    n_new = new if new is not None else max(1, len(previous) // 4)
    taken = union_all([s.geometry for s in kept]).buffer(25) if kept else None
    candidates = make_sites(
        region if taken is None else region.difference(taken), n_new, seed + 1000
    )
    for k, site in enumerate(candidates):
        kept.append(site)
        ids.append(f"site-{date[:4]}-{k + 1:04d}")
        status.append("new")

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    scene_path = folder / "scene.tif"
    _write_scene(scene_path, grid, kept, land_seed, date, season, valid_like=scene)
    truth_path = folder / "truth.geojson"
    _write_truth(
        truth_path,
        kept + [s for s, _ in gone],
        grid.crs,
        ids + [i for _, i in gone],
        status + ["disappeared"] * len(gone),
    )
    aoi_path = folder / "aoi.geojson"
    if (src_dir / "aoi.geojson").is_file():
        aoi_path.write_bytes((src_dir / "aoi.geojson").read_bytes())
    return SynthResult(scene_path, truth_path, aoi_path, grid, len(kept))
