"""From class masks to site polygons: per-tile polygonizing, merging across tile borders,
attributes from the probabilities, filtering, simplifying and clipping to the AOI."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.features import geometry_mask, shapes
from rasterio.windows import Window, from_bounds
from shapely import make_valid, union_all
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from ..geo import NODATA, SCALE, GeoBox, polygonal
from .tiling import Tile

__all__ = ["Site", "polygonize_tiles", "site_attributes", "vectorize"]


@dataclass(frozen=True)
class Site:
    """A detected site in the output grid's CRS, before ranking and ids."""

    geometry: BaseGeometry
    class_id: int
    score_max: float
    score_mean: float
    area_m2: float


def polygonize_tiles(
    mask_path: str | os.PathLike[str],
    tiles: list[Tile],
    class_id: int,
    prob_src: rasterio.io.DatasetReader | None = None,
) -> list[tuple[BaseGeometry, tuple[float, float] | None]]:
    """Polygons of ``class_id`` pixels, polygonized tile by tile and merged across tile borders.

    Pieces that touch their tile's core border are unioned with the pieces they touch in the
    neighbouring tiles; the others are final as they are. With ``prob_src`` (the probability
    raster) a final piece comes with its ``(max, mean)`` probability, taken from its tile's
    pixels while they are in memory (see :func:`site_attributes`); merged pieces with None.
    Memory is one tile plus the polygons.
    """
    final: list[tuple[BaseGeometry, tuple[float, float] | None]] = []
    border: list[BaseGeometry] = []
    with rasterio.open(mask_path) as src:
        for tile in tiles:
            win = tile.core
            data = src.read(1, window=win)
            hit = data == class_id
            if not hit.any():
                continue
            t = src.window_transform(win)
            prob = prob_src.read(class_id, window=win) if prob_src is not None else None
            core_box = _window_box(src.transform, win)
            edge = core_box.exterior
            # polygonize only the hits' bounding box: sites cover a sliver of most tiles
            rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
            r0, c0 = int(rows[0]), int(cols[0])
            part = hit[r0 : int(rows[-1]) + 1, c0 : int(cols[-1]) + 1]
            at = t * Affine.translation(c0, r0)
            for geom, _ in shapes(part.astype(np.uint8), mask=part, transform=at, connectivity=8):
                poly = shape(geom)
                if poly.intersects(edge):
                    border.append(poly)
                else:
                    final.append((poly, None if prob is None else _attributes(prob, t, poly)))
    if border:
        merged = union_all(border)
        final.extend((g, None) for g in (merged.geoms if hasattr(merged, "geoms") else [merged]))
    return final


def _attributes(data: np.ndarray, transform: Affine, geom: BaseGeometry) -> tuple[float, float]:
    """(max, mean) of ``data`` (stored probabilities) over the pixels whose centres fall in
    ``geom``, or (0, 0) when none does."""
    win = from_bounds(*geom.bounds, transform=transform).round_offsets().round_lengths()
    win = win.intersection(Window(0, 0, data.shape[1], data.shape[0]))
    r0, c0 = int(win.row_off), int(win.col_off)
    part = data[r0 : r0 + int(win.height), c0 : c0 + int(win.width)]
    inside = geometry_mask(
        [geom],
        out_shape=part.shape,
        transform=transform * Affine.translation(c0, r0),
        invert=True,
    )
    values = part[inside & (part != NODATA)]
    if values.size == 0:
        return 0.0, 0.0
    return float(values.max()) / SCALE, float(values.mean()) / SCALE


def _window_box(transform: object, win: Window) -> Polygon:
    from rasterio.windows import bounds

    left, bottom, right, top = bounds(win, transform)  # type: ignore[arg-type]
    return Polygon([(left, bottom), (right, bottom), (right, top), (left, top)])


def site_attributes(
    prob_src: rasterio.io.DatasetReader, geom: BaseGeometry, band: int
) -> tuple[float, float]:
    """(max, mean) probability of ``band`` over the pixels whose centres fall in ``geom``."""
    win = from_bounds(*geom.bounds, transform=prob_src.transform).round_offsets().round_lengths()
    win = win.intersection(Window(0, 0, prob_src.width, prob_src.height))
    data = prob_src.read(band, window=win)
    return _attributes(data, prob_src.window_transform(win), geom)


def vectorize(
    mask_path: str | os.PathLike[str],
    probabilities_path: str | os.PathLike[str],
    tiles: list[Tile],
    grid: GeoBox,
    classes: list[str],
    aoi: BaseGeometry | None,
    min_area_m2: float = 50.0,
    simplify_px: float = 1.0,
) -> list[Site]:
    """Sites of every foreground class.

    Args:
        mask_path: the class mask raster.
        probabilities_path: the probability raster (one band per foreground class).
        tiles: the job's tiles (polygonizing goes tile by tile).
        grid: the output grid.
        classes: class names, 0 the background.
        aoi: clip to this area (grid CRS).
        min_area_m2: drop sites smaller than this after clipping.
        simplify_px: simplification tolerance in pixels.

    Returns:
        Sites, unordered.
    """
    tolerance = simplify_px * grid.resolution
    sites: list[Site] = []
    with rasterio.open(probabilities_path) as prob:
        for class_id in range(1, len(classes)):
            for poly, known in polygonize_tiles(mask_path, tiles, class_id, prob):
                score_max, score_mean = known or site_attributes(prob, poly, class_id)
                geom = poly.simplify(tolerance, preserve_topology=True)
                if aoi is not None and not aoi.contains(geom):
                    geom = make_valid(geom.intersection(aoi))
                    geom = polygonal(geom)
                if geom is None or geom.is_empty or geom.area < min_area_m2:
                    continue
                sites.append(Site(geom, class_id, score_max, score_mean, float(geom.area)))
    return sites
