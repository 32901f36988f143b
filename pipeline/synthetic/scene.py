"""Seeded synthetic VHR scenes with planted landfill-like sites, written block by block.

The landscape (:mod:`pipeline.landscape`) is a function of map coordinates in metres, so the
same seed gives the same fields, roads and sites at any GSD, and a block is rendered without
the rest of the scene: memory stays at one block whatever the scene size.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS, Transformer
from rasterio.enums import ColorInterp
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely import affinity
from shapely.geometry import Point, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shp_transform

from ..errors import InputError
from ..geo import GeoBox, aoi_union, read_vectors, select_features, utm_crs_for
from .landscape import SITE_STYLES, Site, render_block

__all__ = [
    "SITE_STYLES",
    "Site",
    "SynthResult",
    "make_sites",
    "render_block",
    "synth_scene",
]

#: default scene centre when no AOI is given: farmland east of Monza (lon, lat).
DEFAULT_CENTRE = (9.33, 45.60)
BLOCK = 1024
#: GDAL block cache while writing scenes (bytes).
CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class SynthResult:
    """Paths and figures of a synthesized scene."""

    scene: Path
    truth: Path
    aoi: Path
    grid: GeoBox
    n_sites: int


def _star_polygon(cx: float, cy: float, area: float, rng: np.random.Generator) -> Polygon:
    n = int(rng.integers(10, 18))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = 1.0 + 0.35 * rng.uniform(-1, 1, n)
    pts = [(math.cos(a) * r, math.sin(a) * r) for a, r in zip(angles, radii, strict=True)]
    poly = Polygon(pts).buffer(0)
    poly = affinity.scale(poly, rng.uniform(0.6, 1.0), 1.0)  # elongate a little
    poly = affinity.rotate(poly, float(rng.uniform(0, 180)), origin=(0, 0))
    k = math.sqrt(area / poly.area)
    poly = affinity.scale(poly, k, k, origin=(0, 0))
    return affinity.translate(poly, cx, cy)


def make_sites(
    region: BaseGeometry, count: int, seed: int, min_area: float = 100.0, max_area: float = 5000.0
) -> list[Site]:
    """Place ``count`` non-overlapping landfill-like polygons inside ``region`` (projected CRS).

    Areas are log-uniform between ``min_area`` and ``max_area`` square metres; sites keep 25 m
    apart; each gets one of :data:`SITE_STYLES`. Fewer are returned if the region is too small
    to hold them all.
    """
    rng = np.random.default_rng(seed)
    sites: list[Site] = []
    if region.is_empty:
        return sites
    minx, miny, maxx, maxy = region.bounds
    tries = 0
    while len(sites) < count and tries < count * 200:
        tries += 1
        area = float(math.exp(rng.uniform(math.log(min_area), math.log(max_area))))
        cx, cy = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        radius = 1.4 * math.sqrt(area / math.pi)
        if not region.contains(Point(cx, cy).buffer(radius + 5)):
            continue
        poly = _star_polygon(cx, cy, area, rng)
        if any(poly.distance(s.geometry) < 25 for s in sites):
            continue
        sites.append(Site(poly, SITE_STYLES[int(rng.integers(len(SITE_STYLES)))]))
    return sites


def _scene_region(
    aoi: str | os.PathLike[str] | None,
    select: list[str] | None,
    size: int,
    gsd: float,
    crs: CRS | None,
) -> tuple[BaseGeometry, CRS, list[dict[str, object]], list[BaseGeometry]]:
    """The AOI in the scene CRS, the CRS, and the AOI features (properties, WGS 84 geometry)."""
    if aoi is not None:
        gdf = select_features(read_vectors(aoi, "AOI"), select or [], "AOI")
        wgs = gdf.to_crs(4326)
        c = wgs.union_all().centroid
        crs = crs or utm_crs_for(c.x, c.y)
        region = aoi_union(gdf, crs)
        props: list[dict[str, object]] = [
            {
                k: (v if isinstance(v, str | int | float | bool) or v is None else str(v))
                for k, v in row.items()
                if k != "geometry"
            }
            for _, row in wgs.iterrows()
        ]
        return region, crs, props, list(wgs.geometry)
    crs = crs or utm_crs_for(*DEFAULT_CENTRE)
    cx, cy = Transformer.from_crs(4326, crs, always_xy=True).transform(*DEFAULT_CENTRE)
    left = math.floor((cx - size * gsd / 2) / gsd) * gsd
    bottom = math.floor((cy - size * gsd / 2) / gsd) * gsd
    region = box(left, bottom, left + size * gsd, bottom + size * gsd)
    to_wgs = Transformer.from_crs(crs, 4326, always_xy=True).transform
    return region, crs, [{"name": "synthetic AOI"}], [shp_transform(to_wgs, region)]


def _write_scene(
    path: Path,
    grid: GeoBox,
    sites: list[Site],
    seed: int,
    date: str,
    season: int,
    valid_region: BaseGeometry | None = None,
    valid_mask: Callable[[Window], np.ndarray] | None = None,
) -> None:
    """Render and write the scene block by block; nodata outside ``valid_region`` and where
    ``valid_mask`` (given each :data:`BLOCK` window of the grid) is 0. The file appears under
    its name only when complete."""
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 3,
        "dtype": "uint8",
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "predictor": 2,
        "photometric": "RGB",
        "interleave": "pixel",
        "BIGTIFF": "IF_SAFER",
        "SPARSE_OK": "TRUE",
    }
    tmp_path = path.with_name(f".{path.name}.partial")
    # blocks are written whole and never read back: a small cache bounds the memory
    with rasterio.Env(GDAL_CACHEMAX=CACHE_BYTES), rasterio.open(tmp_path, "w", **profile) as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
        for band, name in enumerate(("red", "green", "blue"), start=1):
            dst.set_band_description(band, name)
        dst.update_tags(
            ACQUISITION_DATE=date,
            TIFFTAG_DATETIME=f"{date.replace('-', ':')} 10:30:00",
            SYNTHETIC_SEED=str(seed),
            SYNTHETIC_SEASON=str(season),
            GSD_M=str(grid.resolution),
        )
        for row in range(0, grid.height, BLOCK):
            for col in range(0, grid.width, BLOCK):
                win = Window(col, row, min(BLOCK, grid.width - col), min(BLOCK, grid.height - row))
                shape = (int(win.height), int(win.width))
                valid = np.ones(shape, np.uint8)
                if valid_region is not None:
                    valid = rasterize(
                        [(valid_region, 1)],
                        out_shape=shape,
                        transform=grid.window_transform(win),
                        fill=0,
                        dtype="uint8",
                    )
                if valid_mask is not None:
                    valid &= valid_mask(win)
                if not valid.any():
                    continue  # a sparse block: reads as nodata, costs no rendering
                data = render_block(grid, win, sites, seed, season)
                np.rint(data, out=data)
                np.clip(data, 1, 255, out=data)
                out = data.astype(np.uint8)
                out *= valid[None]
                dst.write(out, window=win)
    os.replace(tmp_path, path)


def _write_truth(
    path: Path, sites: list[Site], crs: CRS, ids: list[str], status: list[str]
) -> None:
    to_wgs = Transformer.from_crs(crs, 4326, always_xy=True).transform
    features = [
        {
            "type": "Feature",
            "id": sid,
            "properties": {
                "site_id": sid,
                "class": "landfill",
                "style": site.style,
                "area_m2": round(site.geometry.area, 1),
                "status": st,
            },
            "geometry": _rounded(mapping(shp_transform(to_wgs, site.geometry))),
        }
        for site, sid, st in zip(sites, ids, status, strict=True)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}) + "\n")


def synth_scene(
    out: str | os.PathLike[str],
    *,
    aoi: str | os.PathLike[str] | None = None,
    select: list[str] | None = None,
    size: int = 1024,
    gsd: float = 0.5,
    crs: str | None = None,
    seed: int = 0,
    landfills: int = 20,
    date: str = "2026-06-15",
) -> SynthResult:
    """Write ``scene.tif``, ``truth.geojson`` and ``aoi.geojson`` into the folder ``out``.

    The landscape holds crops, meadows, bare soil, woods, orchards, water, roads and hedges,
    houses with shadows, and the hard negatives a naive model takes for landfills: car parks,
    construction sites, quarries and farmyards with machinery and bales. Sites are 100 to
    5,000 m² of mixed debris, tyre piles, containers or soil with debris.

    Args:
        out: output folder (created).
        aoi: AOI vector file; the scene covers its bounds plus a 40 m margin and pixels farther
            than 30 m outside it are nodata. Without one, a ``size`` x ``size`` square.
        select: codes of the AOI features to keep (e.g. ISTAT municipality codes).
        size: side of the default square scene, pixels.
        gsd: ground sampling distance, metres per pixel.
        crs: the scene CRS (``EPSG:N``, projected); default the AOI's UTM zone.
        seed: seeds the landscape and the sites.
        landfills: planted sites.
        date: acquisition date written into the scene's tags.

    Returns:
        The paths written and the scene grid.
    """
    if gsd <= 0 or size < 64:
        raise InputError("synth scene needs --gsd > 0 and --size >= 64")
    if landfills < 0:
        raise InputError("--landfills must be zero or more")
    target_crs = None
    if crs is not None:
        try:
            target_crs = CRS.from_user_input(crs)
        except Exception:
            raise InputError(f"--crs {crs} is not a CRS: give EPSG:N (e.g. EPSG:32632)") from None
    region, scene_crs, props, wgs_geoms = _scene_region(aoi, select, size, gsd, target_crs)
    margin = 40.0 if aoi is not None else 0.0
    grid = GeoBox.from_bounds(region.buffer(margin).bounds, gsd, scene_crs)
    sites = make_sites(
        region.buffer(-10) if aoi is not None else region.buffer(-30), landfills, seed
    )

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    scene_path = folder / "scene.tif"
    _write_scene(
        scene_path,
        grid,
        sites,
        seed,
        date,
        0,
        valid_region=region.buffer(30.0) if aoi is not None else None,
    )
    truth_path = folder / "truth.geojson"
    _write_truth(
        truth_path,
        sites,
        scene_crs,
        [f"site-{i:04d}" for i in range(1, len(sites) + 1)],
        ["new"] * len(sites),
    )
    aoi_features = [
        {"type": "Feature", "properties": p, "geometry": _rounded(mapping(g))}
        for p, g in zip(props, wgs_geoms, strict=True)
    ]
    aoi_path = folder / "aoi.geojson"
    aoi_path.write_text(json.dumps({"type": "FeatureCollection", "features": aoi_features}) + "\n")
    return SynthResult(scene_path, truth_path, aoi_path, grid, len(sites))


def _rounded(geom: dict[str, object], digits: int = 8) -> dict[str, object]:
    def r(c: object) -> object:
        if isinstance(c, list | tuple):
            if c and isinstance(c[0], float | int):
                return [round(float(v), digits) for v in c]
            return [r(v) for v in c]
        return c

    return {"type": geom["type"], "coordinates": r(geom["coordinates"])}
