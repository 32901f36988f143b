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
from rasterio.features import rasterize, shapes
from rasterio.windows import Window
from shapely import affinity, union_all
from shapely.geometry import Point, Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shp_transform

from .errors import InputError
from .geobox import GeoBox, utm_crs_for
from .noise import fbm, hash01, value_noise, voronoi
from .vectors import aoi_union, read_vectors, select_features

__all__ = [
    "SITE_STYLES",
    "Site",
    "SynthResult",
    "make_sites",
    "render_block",
    "synth_revisit",
    "synth_scene",
]

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


#: land-cover parcels: (upper bound of the parcel's kind hash, name); hard negatives included.
LAND_COVER = (
    (0.32, "crop"),
    (0.46, "meadow"),
    (0.53, "bare_soil"),
    (0.62, "wood"),
    (0.72, "houses"),
    (0.77, "car_park"),
    (0.82, "construction"),
    (0.85, "quarry"),
    (0.91, "farmyard"),
    (0.95, "orchard"),
    (1.01, "water"),
)
#: landfill styles; a site keeps its style across revisits.
SITE_STYLES = ("debris", "tyres", "containers", "soil_and_debris")

_CARS = np.array(
    [(220, 220, 225), (30, 30, 35), (160, 30, 30), (60, 70, 140), (170, 170, 175), (90, 90, 95)],
    np.float32,
)
_MACHINES = np.array([(190, 40, 30), (40, 120, 50), (220, 180, 40), (60, 60, 65)], np.float32)


@dataclass(frozen=True)
class Site:
    """A planted landfill: its polygon in the scene CRS and its look."""

    geometry: Polygon
    style: str = "debris"


def _cells(
    x: np.ndarray, y: np.ndarray, sx: float, sy: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer lattice cells of size sx x sy metres and the position (0..1) inside each."""
    fx, fy = x / sx, y / sy
    ix, iy = np.floor(fx), np.floor(fy)
    return ix.astype(np.int64), iy.astype(np.int64), fx - ix, fy - iy


def _rgb(r: np.ndarray | float, g: np.ndarray | float, b: np.ndarray | float, n: int) -> np.ndarray:
    return np.stack([np.broadcast_to(np.asarray(v, np.float32), (n,)) for v in (r, g, b)])


def _paint_crop(x, y, tone, angle, period, grain, season):  # type: ignore[no-untyped-def]
    rows = 0.5 + 0.5 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * (2 * np.pi / period))
    t = (tone + 0.37 * season) % 1.0  # crops change colour between surveys
    mod = 0.8 + 0.25 * rows + 0.1 * (grain - 0.5)
    return _rgb((70 + 100 * t) * mod, (110 + 50 * t) * mod, (40 + 35 * t) * mod, x.size)


def _paint_lots(x, y, seed, grain, kind):  # type: ignore[no-untyped-def]
    """Houses with roofs and shadows, or yards with machinery and bales, on 20 m lots."""
    lx, ly, u, v = _cells(x, y, 20.0, 20.0, seed)
    half_w = 0.2 + 0.15 * hash01(lx, ly, seed + 41)
    half_h = 0.2 + 0.15 * hash01(lx, ly, seed + 42)
    roof = (np.abs(u - 0.5) < half_w) & (np.abs(v - 0.5) < half_h)
    shadow = ~roof & (np.abs(u - 0.58) < half_w) & (np.abs(v - 0.42) < half_h)
    out = _rgb(120 + 12 * grain, 118 + 12 * grain, 112 + 12 * grain, x.size)
    if kind == "farmyard":
        out = _rgb(150 + 20 * grain, 140 + 18 * grain, 120 + 15 * grain, x.size)  # gravel yard
        barn = roof & (hash01(lx, ly, seed + 40) < 0.5)
        shadow &= hash01(lx, ly, seed + 40) < 0.5
        out[:, barn] = np.array([[150], [70], [55]], np.float32) * (0.9 + 0.2 * grain[barn])
        # machinery: 2.5 x 5 m vehicles; round bales: 1.6 m discs
        mx, my, mu, mv = _cells(x, y, 6.0, 9.0, seed + 43)
        machine = ~barn & (np.abs(mu - 0.5) < 0.22) & (np.abs(mv - 0.5) < 0.3)
        machine &= hash01(mx, my, seed + 44) < 0.35
        pick = (hash01(mx, my, seed + 45) * len(_MACHINES)).astype(np.int64)
        out[:, machine] = _MACHINES[pick[machine]].T
        _, _, bu, bv = _cells(x, y, 2.2, 2.2, seed + 46)
        bale = ~barn & ~machine & (np.hypot(bu - 0.5, bv - 0.5) < 0.36)
        bale &= (
            hash01(np.floor(x / 12).astype(np.int64), np.floor(y / 12).astype(np.int64), seed + 47)
            < 0.25
        )
        out[:, bale] = np.array([[205], [185], [120]], np.float32) * (0.85 + 0.3 * grain[bale])
    else:
        red = hash01(lx, ly, seed + 43) < 0.5
        out[:, roof & red] = np.stack([165 + 20 * grain, 80 + 10 * grain, 60 + 10 * grain])[
            :, roof & red
        ]
        out[:, roof & ~red] = np.stack([150 + 20 * grain, 150 + 20 * grain, 155 + 20 * grain])[
            :, roof & ~red
        ]
    out[:, shadow] = np.array([[55.0], [55.0], [58.0]], np.float32)
    return out


def _paint_car_park(x, y, seed, grain):  # type: ignore[no-untyped-def]
    out = _rgb(85 + 6 * grain, 85 + 6 * grain, 88 + 6 * grain, x.size)
    cx, cy, cu, cv = _cells(x, y, 2.6, 5.5, seed + 48)
    car = (np.abs(cu - 0.5) < 0.34) & (np.abs(cv - 0.5) < 0.4) & (hash01(cx, cy, seed + 49) < 0.75)
    pick = (hash01(cx, cy, seed + 50) * len(_CARS)).astype(np.int64)
    out[:, car] = _CARS[pick[car]].T
    lane = np.abs(cv - 0.5) > 0.47
    out[:, lane & ~car] = 200.0
    return out


def _paint_construction(x, y, seed, grain):  # type: ignore[no-untyped-def]
    """Earthworks, concrete slabs, stacked materials and site huts: debris-like, not debris."""
    out = _rgb(170 + 25 * grain, 150 + 22 * grain, 120 + 18 * grain, x.size)  # disturbed soil
    lx, ly, u, v = _cells(x, y, 30.0, 30.0, seed + 60)
    slab = (np.abs(u - 0.5) < 0.3) & (np.abs(v - 0.5) < 0.25) & (hash01(lx, ly, seed + 61) < 0.6)
    out[:, slab] = np.stack([190 + 10 * grain, 190 + 10 * grain, 185 + 10 * grain])[:, slab]
    # rebar grid on the slabs
    grid = slab & ((np.abs(((x / 0.8) % 1) - 0.5) < 0.1) | (np.abs(((y / 0.8) % 1) - 0.5) < 0.1))
    out[:, grid] = np.array([[120.0], [80.0], [60.0]], np.float32)
    px, py, pu, pv = _cells(x, y, 7.0, 4.0, seed + 62)
    stack = (
        ~slab
        & (np.abs(pu - 0.5) < 0.3)
        & (np.abs(pv - 0.5) < 0.3)
        & (hash01(px, py, seed + 63) < 0.3)
    )
    shade = 0.85 + 0.3 * hash01(
        np.floor(x / 0.5).astype(np.int64), np.floor(y / 0.5).astype(np.int64), seed + 64
    )
    out[:, stack] = np.array([[175.0], [145.0], [100.0]], np.float32) * shade[stack]  # pallets
    hut = (
        ~slab
        & ~stack
        & (np.abs(pu - 0.5) < 0.4)
        & (np.abs(pv - 0.5) < 0.35)
        & (hash01(px, py, seed + 65) > 0.93)
    )
    out[:, hut] = np.array([[235.0], [235.0], [230.0]], np.float32)
    return out


def _paint_quarry(x, y, seed, grain, d1):  # type: ignore[no-untyped-def]
    bench = np.floor(d1 / 7.0)  # terraces following the pit outline
    level = hash01(bench.astype(np.int64), np.zeros_like(bench, np.int64), seed + 70)
    edge = (d1 / 7.0 - bench) > 0.85
    v = 175 + 40 * level + 15 * grain - 60 * edge
    out = _rgb(v * 1.02, v * 0.97, v * 0.88, x.size)
    pond = d1 < 10.0
    out[:, pond] = np.array([[70.0], [110.0], [105.0]], np.float32)
    return out


def _paint_site(x, y, style, seed, grain):  # type: ignore[no-untyped-def]
    """A landfill's surface in one of :data:`SITE_STYLES`."""
    fx, fy = np.floor(x / 0.9).astype(np.int64), np.floor(y / 0.9).astype(np.int64)
    pick = (hash01(fx, fy, seed + 80) * len(_DEBRIS)).astype(np.int64)
    light = 0.8 + 0.4 * hash01(fx, fy, seed + 81)
    debris = _DEBRIS[pick].T * light
    soil = _rgb(
        _DEBRIS[3, 0] * (0.9 + 0.2 * grain),
        _DEBRIS[3, 1] * (0.9 + 0.2 * grain),
        _DEBRIS[3, 2] * (0.9 + 0.2 * grain),
        x.size,
    )
    coarse = hash01(
        np.floor(x / 2.5).astype(np.int64), np.floor(y / 2.5).astype(np.int64), seed + 82
    )
    out = np.where(coarse < 0.35, soil, debris)
    if style == "tyres":
        tx, ty, tu, tv = _cells(x, y, 1.1, 1.1, seed + 83)
        ring = np.hypot(tu - 0.5, tv - 0.5)
        tyre = (ring < 0.45) & (hash01(tx, ty, seed + 84) < 0.7)
        out[:, tyre] = np.array([[38.0], [38.0], [42.0]], np.float32) * (
            0.8 + 0.5 * (ring[tyre] < 0.2)
        )
    elif style == "containers":
        cx, cy, cu, cv = _cells(x, y, 4.0, 8.0, seed + 85)
        box_ = (
            (np.abs(cu - 0.5) < 0.35) & (np.abs(cv - 0.5) < 0.4) & (hash01(cx, cy, seed + 86) < 0.4)
        )
        colours = np.array(
            [[40, 110, 60], [170, 60, 40], [60, 80, 150], [200, 160, 40]], np.float32
        )
        pick = (hash01(cx, cy, seed + 87) * 4).astype(np.int64)
        out[:, box_] = colours[pick[box_]].T * (0.9 + 0.2 * grain[box_])
    elif style == "soil_and_debris":
        out = np.where(coarse < 0.7, soil * 1.08, debris)
    return out


def render_block(
    grid: GeoBox, window: Window, sites: list[Site], seed: int, season: int = 0
) -> np.ndarray:
    """Render one window of the scene as float32 RGB (3, h, w), values about 0..255.

    Args:
        grid: the scene grid.
        window: the window to render.
        sites: landfills in the grid's CRS.
        seed: the landscape's seed.
        season: later surveys of the same landscape (crop colours change; nothing else does).
    """
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
    grain = fbm(x, y, 6.0, seed + 20)
    rgb = np.empty((3, h, w), np.float32)
    lower = 0.0
    for upper, name in LAND_COVER:
        sel = (kind >= lower) & (kind < upper)
        lower = upper
        if not sel.any():
            continue
        xs, ys, g, tn = x[sel], y[sel], grain[sel], tone[sel]
        n = xs.size
        if name == "crop":
            angle = hash01(cell_x[sel], cell_y[sel], seed + 13) * np.pi
            period = 1.5 + 1.5 * hash01(cell_x[sel], cell_y[sel], seed + 14)
            out = _paint_crop(xs, ys, tn, angle, period, g, season)
        elif name == "meadow":
            m = 0.85 + 0.3 * g
            out = _rgb((95 + 30 * tn) * m, (140 + 20 * tn) * m, (70 + 10 * tn) * m, n)
        elif name == "bare_soil":
            m = 0.85 + 0.3 * g
            out = _rgb((150 + 30 * tn) * m, (120 + 25 * tn) * m, (90 + 20 * tn) * m, n)
        elif name in ("wood", "orchard"):
            if name == "wood":
                crowns = value_noise(xs, ys, 3.0, seed + 30)
            else:  # trees in rows, grass between
                _, _, u, v = _cells(xs, ys, 5.0, 5.0, seed + 31)
                crowns = np.clip(1.3 - 2.6 * np.hypot(u - 0.5, v - 0.5), 0, 1)
            shade = 0.55 + 0.6 * crowns
            out = _rgb(
                40 * shade + 30 * (1 - crowns), 75 * shade + 40 * (1 - crowns), 35 * shade, n
            )
        elif name in ("houses", "farmyard"):
            out = _paint_lots(xs, ys, seed, g, name)
        elif name == "car_park":
            out = _paint_car_park(xs, ys, seed, g)
        elif name == "construction":
            out = _paint_construction(xs, ys, seed, g)
        elif name == "quarry":
            out = _paint_quarry(xs, ys, seed, g, d1[sel])
        else:  # water
            out = _rgb(40 * (0.95 + 0.1 * g), 70 * (0.95 + 0.1 * g), 80 * (0.95 + 0.1 * g), n)
        rgb[:, sel] = out

    # parcel borders: roads or hedges
    border = (d2 - d1) < 3.0
    road = border & (hash01(cell_x, cell_y, seed + 15) < 0.5)
    rgb[:, road] = np.stack([125 + 15 * grain, 122 + 15 * grain, 118 + 15 * grain])[:, road]
    hedge = border & ~road & ((d2 - d1) < 2.0)
    crowns = value_noise(x[hedge], y[hedge], 2.0, seed + 32)
    rgb[:, hedge] = _rgb(
        35 * (0.6 + 0.6 * crowns),
        70 * (0.6 + 0.6 * crowns),
        30 * (0.6 + 0.6 * crowns),
        int(hedge.sum()),
    )

    if sites:
        frame = box(*_bounds(t, w, h))
        for i, style in enumerate(SITE_STYLES):
            shapes = [
                (s.geometry, 1) for s in sites if s.style == style and s.geometry.intersects(frame)
            ]
            if not shapes:
                continue
            inside = rasterize(shapes, out_shape=(h, w), transform=t, fill=0, dtype="uint8") > 0
            if inside.any():
                rgb[:, inside] = _paint_site(
                    x[inside], y[inside], style, seed + 7 * i, grain[inside]
                )

    illum = 0.95 + 0.1 * value_noise(x, y, 300.0, seed + 60 + 97 * season)
    noise = (
        hash01((x / res).astype(np.int64), (y / res).astype(np.int64), seed + 61 + season) - 0.5
    ) * 8
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


def _write_scene(
    path: Path,
    grid: GeoBox,
    sites: list[Site],
    seed: int,
    date: str,
    season: int,
    valid_region: BaseGeometry | None = None,
    valid_like: Path | None = None,
) -> None:
    """Render and write the scene block by block; nodata outside ``valid_region`` (or where the
    scene ``valid_like`` has none). The file appears under its name only when complete."""
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
    }
    tmp_path = path.with_name(f".{path.name}.partial")
    like = rasterio.open(valid_like) if valid_like is not None else None
    try:
        with rasterio.open(tmp_path, "w", **profile) as dst:
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
                    win = Window(
                        col, row, min(BLOCK, grid.width - col), min(BLOCK, grid.height - row)
                    )
                    data = np.clip(np.rint(render_block(grid, win, sites, seed, season)), 1, 255)
                    data = data.astype(np.uint8)
                    if valid_region is not None:
                        valid = rasterize(
                            [(valid_region, 1)],
                            out_shape=data.shape[1:],
                            transform=grid.window_transform(win),
                            fill=0,
                            dtype="uint8",
                        )
                        data *= valid[None]
                    if like is not None:
                        data *= (like.dataset_mask(window=win) > 0)[None].astype(np.uint8)
                    dst.write(data, window=win)
    finally:
        if like is not None:
            like.close()
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


def _rounded(geom: dict[str, object], digits: int = 8) -> dict[str, object]:
    def r(c: object) -> object:
        if isinstance(c, list | tuple):
            if c and isinstance(c[0], float | int):
                return [round(float(v), digits) for v in c]
            return [r(v) for v in c]
        return c

    return {"type": geom["type"], "coordinates": r(geom["coordinates"])}
