"""Seeded synthetic VHR scenes with planted landfill-like sites, written block by block.

The landscape is a function of map coordinates in metres (see :mod:`pipeline.noise`), so the
same seed gives the same fields, roads and sites at any GSD, and a block is rendered without
the rest of the scene: memory stays at one block whatever the scene size.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
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

from .errors import InputError
from .geobox import GeoBox, utm_crs_for
from .noise import fbm, hash01, value_noise, voronoi
from .vectors import aoi_union, read_vectors, select_features

__all__ = ["SynthResult", "make_sites", "render_block", "synth_scene"]

#: default scene centre when no AOI is given: farmland east of Monza (lon, lat).
DEFAULT_CENTRE = (9.33, 45.60)
BLOCK = 1024

_DEBRIS = np.array(
    [
        (228, 228, 222),  # white plastic, paper
        (182, 180, 172),  # grey rubble
        (42, 42, 46),  # tyres, dark plastic
        (128, 104, 80),  # disturbed soil
        (72, 100, 158),  # blue tarpaulin
        (150, 82, 50),  # rust
        (200, 170, 120),  # timber, cardboard
        (95, 90, 85),  # wet rubble
    ],
    np.float32,
)


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
    region: BaseGeometry, count: int, seed: int, min_area: float = 150.0, max_area: float = 3000.0
) -> list[Polygon]:
    """Place ``count`` non-overlapping landfill-like polygons inside ``region`` (projected CRS).

    Areas are log-uniform between ``min_area`` and ``max_area`` square metres; sites keep 25 m
    apart. Fewer are returned if the region is too small to hold them all.
    """
    rng = np.random.default_rng(seed)
    sites: list[Polygon] = []
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
        if any(poly.distance(s) < 25 for s in sites):
            continue
        sites.append(poly)
    return sites


def render_block(grid: GeoBox, window: Window, sites: list[Polygon], seed: int) -> np.ndarray:
    """Render one window of the scene as float32 RGB (3, h, w), values about 0..255."""
    h, w = int(window.height), int(window.width)
    res = grid.resolution
    t = grid.window_transform(window)
    cols = np.arange(w, dtype=np.float64) + 0.5
    rows = np.arange(h, dtype=np.float64) + 0.5
    x = (t.c + cols * res)[None, :].repeat(h, 0)  # map metres
    y = (t.f - rows * res)[:, None].repeat(w, 1)

    cell_x, cell_y, d1, d2 = voronoi(x, y, 90.0, seed)
    kind = hash01(cell_x, cell_y, seed + 11)
    tone = hash01(cell_x, cell_y, seed + 12)
    angle = hash01(cell_x, cell_y, seed + 13) * np.pi
    rgb = np.empty((3, h, w), np.float32)

    def paint(
        sel: np.ndarray, r: np.ndarray | float, g: np.ndarray | float, b: np.ndarray | float
    ) -> None:
        for band, v in enumerate((r, g, b)):
            rgb[band][sel] = v[sel] if isinstance(v, np.ndarray) else v

    grain = fbm(x, y, 6.0, seed + 20)
    # crops: rows at 1.5-3 m spacing, parcel-wise orientation and colour
    period = 1.5 + 1.5 * hash01(cell_x, cell_y, seed + 14)
    rows_tex = 0.5 + 0.5 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * (2 * np.pi / period))
    crop = kind < 0.40
    base_r, base_g, base_b = 70 + 90 * tone, 110 + 50 * tone, 40 + 30 * tone
    mod = 0.8 + 0.25 * rows_tex + 0.1 * (grain - 0.5)
    paint(crop, base_r * mod, base_g * mod, base_b * mod)
    meadow = (kind >= 0.40) & (kind < 0.58)
    m = 0.85 + 0.3 * grain
    paint(meadow, (95 + 30 * tone) * m, (140 + 20 * tone) * m, (70 + 10 * tone) * m)
    soil = (kind >= 0.58) & (kind < 0.68)
    paint(soil, (150 + 30 * tone) * m, (120 + 25 * tone) * m, (90 + 20 * tone) * m)
    wood = (kind >= 0.68) & (kind < 0.78)
    crowns = value_noise(x, y, 3.0, seed + 30)
    shade = 0.55 + 0.6 * crowns
    paint(wood, 40 * shade, 75 * shade, 35 * shade)
    water = kind >= 0.95
    wv = 0.95 + 0.1 * grain
    paint(water, 40 * wv, 70 * wv, 80 * wv)

    # built-up parcels: 20 m lots, each a building (roof + shadow) or a car park (hard negative)
    built = (kind >= 0.78) & (kind < 0.95)
    if built.any():
        lot = 20.0
        lx, ly = np.floor(x / lot), np.floor(y / lot)
        u, v = x / lot - lx, y / lot - ly
        lot_kind = hash01(lx.astype(np.int64), ly.astype(np.int64), seed + 40)
        half_w = 0.22 + 0.15 * hash01(lx.astype(np.int64), ly.astype(np.int64), seed + 41)
        half_h = 0.22 + 0.15 * hash01(lx.astype(np.int64), ly.astype(np.int64), seed + 42)
        roof = (np.abs(u - 0.5) < half_w) & (np.abs(v - 0.5) < half_h)
        shadow = ~roof & (np.abs(u - 0.5 - 0.08) < half_w) & (np.abs(v - 0.5 + 0.08) < half_h)
        red = hash01(lx.astype(np.int64), ly.astype(np.int64), seed + 43) < 0.5
        paint(built, 120 + 10 * grain, 118 + 10 * grain, 112 + 10 * grain)
        house = built & (lot_kind < 0.7)
        paint(house & shadow, 55.0, 55.0, 58.0)
        paint(house & roof & red, 165 + 20 * grain, 80 + 10 * grain, 60 + 10 * grain)
        paint(house & roof & ~red, 150 + 20 * grain, 150 + 20 * grain, 155 + 20 * grain)
        # car park: asphalt with rows of cars in random colours
        park = built & (lot_kind >= 0.7)
        paint(park, 85.0, 85.0, 88.0)
        cx, cy = np.floor(x / 2.6), np.floor(y / 5.5)
        cu, cv = x / 2.6 - cx, y / 5.5 - cy
        car = park & (np.abs(cu - 0.5) < 0.34) & (np.abs(cv - 0.5) < 0.4)
        car &= hash01(cx.astype(np.int64), cy.astype(np.int64), seed + 44) < 0.75
        pick = (hash01(cx.astype(np.int64), cy.astype(np.int64), seed + 45) * 6).astype(np.int64)
        palette = np.array(
            [
                (220, 220, 225),
                (30, 30, 35),
                (160, 30, 30),
                (60, 70, 140),
                (170, 170, 175),
                (90, 90, 95),
            ],
            np.float32,
        )
        for band in range(3):
            rgb[band][car] = palette[pick[car], band]

    # parcel borders: roads or hedges
    border = (d2 - d1) < 3.0
    road = border & (hash01(cell_x, cell_y, seed + 15) < 0.5)
    paint(road, 125 + 15 * grain, 122 + 15 * grain, 118 + 15 * grain)
    hedge = border & ~road & ((d2 - d1) < 2.0)
    paint(hedge, 35 * shade, 70 * shade, 30 * shade)

    if sites:
        shapes = [(s, 1) for s in sites if s.intersects(box(*_bounds(t, w, h)))]
        if shapes:
            inside = rasterize(shapes, out_shape=(h, w), transform=t, fill=0, dtype="uint8") > 0
            if inside.any():
                frag = np.floor(x / 0.9), np.floor(y / 0.9)
                fx, fy = frag[0].astype(np.int64), frag[1].astype(np.int64)
                pick = (hash01(fx, fy, seed + 50) * len(_DEBRIS)).astype(np.int64)
                soil_mix = (
                    hash01(
                        np.floor(x / 2.5).astype(np.int64),
                        np.floor(y / 2.5).astype(np.int64),
                        seed + 51,
                    )
                    < 0.35
                )
                light = 0.8 + 0.4 * hash01(fx, fy, seed + 52)
                for band in range(3):
                    debris = _DEBRIS[pick, band] * light
                    debris = np.where(soil_mix, _DEBRIS[3, band] * (0.9 + 0.2 * grain), debris)
                    rgb[band][inside] = debris[inside]

    illum = 0.95 + 0.1 * value_noise(x, y, 300.0, seed + 60)
    noise = (hash01((x / res).astype(np.int64), (y / res).astype(np.int64), seed + 61) - 0.5) * 8
    return rgb * illum + noise


def _bounds(t: object, w: int, h: int) -> tuple[float, float, float, float]:
    left, top, res = t.c, t.f, t.a  # type: ignore[attr-defined]
    return (left, top - h * res, left + w * res, top)


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
    valid_region = region.buffer(30.0) if aoi is not None else None

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    scene_path = folder / "scene.tif"
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 3,
        "dtype": "uint8",
        "crs": scene_crs,
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
    }
    tmp_path = folder / ".scene.tif.partial"
    with rasterio.open(tmp_path, "w", **profile) as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
        for band, name in enumerate(("red", "green", "blue"), start=1):
            dst.set_band_description(band, name)
        dst.update_tags(
            ACQUISITION_DATE=date,
            TIFFTAG_DATETIME=f"{date.replace('-', ':')} 10:30:00",
            SYNTHETIC_SEED=str(seed),
            GSD_M=str(gsd),
        )
        for row in range(0, grid.height, BLOCK):
            for col in range(0, grid.width, BLOCK):
                win = Window(col, row, min(BLOCK, grid.width - col), min(BLOCK, grid.height - row))
                rgb = render_block(grid, win, sites, seed)
                data = np.clip(np.rint(rgb), 1, 255).astype(np.uint8)
                if valid_region is not None:
                    t = grid.window_transform(win)
                    valid = rasterize(
                        [(valid_region, 1)],
                        out_shape=data.shape[1:],
                        transform=t,
                        fill=0,
                        dtype="uint8",
                    )
                    data *= valid[None]
                dst.write(data, window=win)
    os.replace(tmp_path, scene_path)

    to_wgs = Transformer.from_crs(scene_crs, 4326, always_xy=True).transform
    features = []
    for i, site in enumerate(sites, start=1):
        features.append(
            {
                "type": "Feature",
                "id": f"T{i:04d}",
                "properties": {
                    "site_id": f"T{i:04d}",
                    "class": "landfill",
                    "area_m2": round(site.area, 1),
                    "status": "new",
                },
                "geometry": _rounded(mapping(shp_transform(to_wgs, site))),
            }
        )
    truth_path = folder / "truth.geojson"
    truth_path.write_text(json.dumps({"type": "FeatureCollection", "features": features}) + "\n")
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


def today() -> str:
    return dt.date.today().isoformat()
