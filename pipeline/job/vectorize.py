"""From class masks to site polygons: per-tile polygonizing, merging across tile borders,
attributes from the probabilities, filtering, simplifying and clipping to the AOI."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import rasterio
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
    mask_path: str | os.PathLike[str], tiles: list[Tile], class_id: int
) -> list[BaseGeometry]:
    """Polygons of ``class_id`` pixels, polygonized tile by tile and merged across tile borders.

    Pieces that touch their tile's core border are unioned with the pieces they touch in the
    neighbouring tiles; the others are final as they are. Memory is one tile plus the polygons.
    """
    final: list[BaseGeometry] = []
    border: list[BaseGeometry] = []
    with rasterio.open(mask_path) as src:
        for tile in tiles:
            win = tile.core
            data = src.read(1, window=win)
            hit = data == class_id
            if not hit.any():
                continue
            t = src.window_transform(win)
            core_box = _window_box(src.transform, win)
            edge = core_box.exterior
            for geom, _ in shapes(hit.astype(np.uint8), mask=hit, transform=t, connectivity=8):
                poly = shape(geom)
                (border if poly.intersects(edge) else final).append(poly)
    if border:
        merged = union_all(border)
        final.extend(merged.geoms if hasattr(merged, "geoms") else [merged])
    return final


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
    inside = geometry_mask(
        [geom], out_shape=data.shape, transform=prob_src.window_transform(win), invert=True
    )
    values = data[inside & (data != NODATA)]
    if values.size == 0:
        return 0.0, 0.0
    return float(values.max()) / SCALE, float(values.mean()) / SCALE


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
            for poly in polygonize_tiles(mask_path, tiles, class_id):
                score_max, score_mean = site_attributes(prob, poly, class_id)
                geom = poly.simplify(tolerance, preserve_topology=True)
                if aoi is not None and not aoi.contains(geom):
                    geom = make_valid(geom.intersection(aoi))
                    geom = polygonal(geom)
                if geom is None or geom.is_empty or geom.area < min_area_m2:
                    continue
                sites.append(Site(geom, class_id, score_max, score_mean, float(geom.area)))
    return sites
