"""Revisits: the same synthetic landscape at a later date, its sites changed."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS
from rasterio.features import shapes
from rasterio.windows import Window
from shapely import affinity, union_all
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InputError
from ..geo import GeoBox, read_vectors
from .landscape import Site
from .scene import BLOCK, CACHE_BYTES, SynthResult, _write_scene, _write_truth, make_sites

__all__ = ["synth_revisit"]


#: what happens to a site between two surveys, and how likely it is.
_FATES = (("persisting", 0.4), ("grown", 0.2), ("shrunk", 0.15), ("disappeared", 0.25))


class _LikeMask:
    """Where an earlier scene has imagery, read once, ``block`` window by window.

    Blocks are remembered as empty, full or (along the scene's edges) a packed bit mask, so the
    revisit reads the earlier scene a single time in bounded memory. ``outline`` is the valid
    area traced on a mask decimated to about 8 m (as GDAL's nearest-neighbour decimation).
    """

    def __init__(self, scene: Path, block: int, cell: float = 8.0) -> None:
        self.block = block
        self.full: set[tuple[int, int]] = set()
        self.partial: dict[tuple[int, int], tuple[np.ndarray, tuple[int, int]]] = {}
        with rasterio.Env(GDAL_CACHEMAX=CACHE_BYTES), rasterio.open(scene) as src:
            height, width = self.shape = (src.height, src.width)
            step = max(1, int(cell / src.res[0]))
            out_h, out_w = max(1, height // step), max(1, width // step)
            rows = np.floor((np.arange(out_h) + 0.5) * (height / out_h)).astype(np.int64)
            cols = np.floor((np.arange(out_w) + 0.5) * (width / out_w)).astype(np.int64)
            coarse = np.zeros((out_h, out_w), np.uint8)
            for row in range(0, height, block):
                for col in range(0, width, block):
                    win = Window(col, row, min(block, width - col), min(block, height - row))
                    mask = (src.dataset_mask(window=win) > 0).astype(np.uint8)
                    if mask.all():
                        self.full.add((row, col))
                    elif mask.any():
                        self.partial[(row, col)] = (np.packbits(mask), mask.shape)
                    else:
                        continue
                    r = (rows >= row) & (rows < row + mask.shape[0])
                    c = (cols >= col) & (cols < col + mask.shape[1])
                    coarse[np.ix_(r, c)] = mask[np.ix_(rows[r] - row, cols[c] - col)]
            t = src.transform * src.transform.scale(width / out_w, height / out_h)
        self.outline: BaseGeometry = union_all(
            [shape(g) for g, v in shapes(coarse, mask=coarse > 0, transform=t) if v]
        )

    def __call__(self, win: Window) -> np.ndarray:
        """1 where the earlier scene has imagery in the block ``win`` (as ``_write_scene``'s)."""
        key = (int(win.row_off), int(win.col_off))
        size = (int(win.height), int(win.width))
        height, width = self.shape
        block = self.block
        if (
            key[0] % block
            or key[1] % block
            or size
            != (
                min(block, height - key[0]),
                min(block, width - key[1]),
            )
        ):
            raise ValueError(f"{win} is not one of the {block}-pixel blocks of the scene")
        if key in self.full:
            return np.ones(size, np.uint8)
        if key in self.partial:
            bits, shape_ = self.partial[key]
            return np.unpackbits(bits, count=shape_[0] * shape_[1]).reshape(shape_)
        return np.zeros(size, np.uint8)


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
    like_mask = _LikeMask(scene, BLOCK)  # new sites only where the earlier scene had imagery
    valid = like_mask.outline
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
    _write_scene(scene_path, grid, kept, land_seed, date, season, valid_mask=like_mask)
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
