"""The synthetic landscape: land cover, hard negatives and landfill surfaces, rendered for
any window of a grid from hashes of map coordinates (no state shared between blocks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry import Polygon, box

from ..geo import GeoBox
from .noise import fbm_grid, hash01, value_noise, value_noise_grid, voronoi_grid

__all__ = ["LAND_COVER", "SITE_STYLES", "Site", "render_block"]

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


def _paint_cover(name, xs, ys, g, tn, seed, season, cells, ids):  # type: ignore[no-untyped-def]
    """Parcels of land cover ``name`` at the pixels ``ids`` (flat indices in ``cells``), at map
    coordinates (xs, ys)."""
    n = xs.size
    if name == "crop":
        parcel = cells.index.ravel()[ids]
        angle = cells.hash(seed + 13)[parcel] * np.pi
        period = 1.5 + 1.5 * cells.hash(seed + 14)[parcel]
        return _paint_crop(xs, ys, tn, angle, period, g, season)
    if name == "meadow":
        m = 0.85 + 0.3 * g
        return _rgb((95 + 30 * tn) * m, (140 + 20 * tn) * m, (70 + 10 * tn) * m, n)
    if name == "bare_soil":
        m = 0.85 + 0.3 * g
        return _rgb((150 + 30 * tn) * m, (120 + 25 * tn) * m, (90 + 20 * tn) * m, n)
    if name in ("wood", "orchard"):
        if name == "wood":
            crowns = value_noise(xs, ys, 3.0, seed + 30)
        else:  # trees in rows, grass between
            _, _, u, v = _cells(xs, ys, 5.0, 5.0, seed + 31)
            crowns = np.clip(1.3 - 2.6 * np.hypot(u - 0.5, v - 0.5), 0, 1)
        shade = 0.55 + 0.6 * crowns
        return _rgb(40 * shade + 30 * (1 - crowns), 75 * shade + 40 * (1 - crowns), 35 * shade, n)
    if name in ("houses", "farmyard"):
        return _paint_lots(xs, ys, seed, g, name)
    if name == "car_park":
        return _paint_car_park(xs, ys, seed, g)
    if name == "construction":
        return _paint_construction(xs, ys, seed, g)
    if name == "quarry":
        return _paint_quarry(xs, ys, seed, g, cells.d1.ravel()[ids])
    # water
    return _rgb(40 * (0.95 + 0.1 * g), 70 * (0.95 + 0.1 * g), 80 * (0.95 + 0.1 * g), n)


_UPPER = np.array([u for u, _ in LAND_COVER], np.float32)  # compared as float32, like the hash


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
    xc = t.c + (np.arange(w, dtype=np.float64) + 0.5) * res  # map metres of the columns
    yr = t.f - (np.arange(h, dtype=np.float64) + 0.5) * res  # and of the rows

    cells = voronoi_grid(xc, yr, 90.0, seed)
    index = cells.index.ravel()
    grain = fbm_grid(xc, yr, 6.0, seed + 20)
    flat_grain = grain.ravel()
    tone = cells.hash(seed + 12)
    cover = np.searchsorted(_UPPER, cells.hash(seed + 11), side="right").astype(np.uint8)
    cover_px = cover[index]
    order = np.argsort(cover_px, kind="stable")  # pixels grouped by land cover, in raster order
    ends = np.cumsum(np.bincount(cover_px, minlength=len(LAND_COVER)))
    rgb = np.empty((3, h, w), np.float32)
    flat_rgb = rgb.reshape(3, -1)
    start = 0
    for i, (_, name) in enumerate(LAND_COVER):
        ids = order[start : ends[i]]
        start = int(ends[i])
        if not ids.size:
            continue
        rows, cols = np.divmod(ids, w)
        tn = tone[index[ids]]
        flat_rgb[:, ids] = _paint_cover(
            name, xc[cols], yr[rows], flat_grain[ids], tn, seed, season, cells, ids
        )

    # parcel borders: roads or hedges
    gap = cells.d2 - cells.d1
    border = gap < 3.0
    road = border & (cells.hash(seed + 15) < 0.5)[cells.index]
    g = grain[road]
    rgb[:, road] = np.stack([125 + 15 * g, 122 + 15 * g, 118 + 15 * g])
    hedge = border & ~road & (gap < 2.0)
    rows, cols = np.nonzero(hedge)
    crowns = value_noise(xc[cols], yr[rows], 2.0, seed + 32)
    rgb[:, hedge] = _rgb(
        35 * (0.6 + 0.6 * crowns),
        70 * (0.6 + 0.6 * crowns),
        30 * (0.6 + 0.6 * crowns),
        rows.size,
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
                rows, cols = np.nonzero(inside)
                rgb[:, inside] = _paint_site(xc[cols], yr[rows], style, seed + 7 * i, grain[inside])

    illum = 0.95 + 0.1 * value_noise_grid(xc, yr, 300.0, seed + 60 + 97 * season)
    ix = (xc / res).astype(np.int64)[None, :]
    iy = (yr / res).astype(np.int64)[:, None]
    noise = (hash01(ix, iy, seed + 61 + season) - 0.5) * 8
    rgb *= illum
    rgb += noise
    return rgb


def _bounds(t: object, w: int, h: int) -> tuple[float, float, float, float]:
    left, top, res = t.c, t.f, t.a  # type: ignore[attr-defined]
    return (left, top - h * res, left + w * res, top)
