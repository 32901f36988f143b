"""From class masks to site polygons: per-tile polygonizing, merging across tile borders,
attributes from the probabilities, filtering, simplifying and clipping to the AOI.

A tile is polygonized where its result is made (a model actor, while the tile is in memory:
this part of vectorizing grows with the cluster), and its pieces travel with its file (the
``PIECES`` tag, written with the tile's pixels: a resumed job finds them with the tile). The
job then merges the pieces that meet across tile borders, in one place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.features import geometry_mask, shapes
from rasterio.windows import Window, from_bounds
from shapely import from_wkb, make_valid, to_wkb, union_all
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from ..geo import NODATA, SCALE, GeoBox, polygonal, tile_metadata
from .tiling import Tile

__all__ = [
    "PIECES_TAG",
    "Piece",
    "Site",
    "decode_pieces",
    "encode_pieces",
    "site_attributes",
    "tile_pieces",
    "vectorize",
]

#: the tag of a tile's file that holds its pieces
PIECES_TAG = "PIECES"


@dataclass(frozen=True)
class Site:
    """A detected site in the output grid's CRS, before ranking and ids."""

    geometry: BaseGeometry
    class_id: int
    score_max: float
    score_mean: float
    area_m2: float


@dataclass(frozen=True)
class Piece:
    """A polygon of one class inside one tile's core.

    Attributes:
        class_id: the class.
        geometry: the polygon (grid CRS).
        border: whether it touches the core's edge (it may go on in the next tile).
        scores: ``(max, mean)`` probability over its pixels; None for border pieces (their
            scores are those of the merged site).
    """

    class_id: int
    geometry: BaseGeometry
    border: bool
    scores: tuple[float, float] | None


def tile_pieces(
    tile: Tile, grid: GeoBox, mask: np.ndarray, probabilities: np.ndarray
) -> list[Piece]:
    """The polygons of every foreground class of one tile's core, from its class mask (h, w)
    and stored probabilities (foreground classes, h, w), class by class."""
    win = tile.core
    t = grid.window_transform(win)
    edge = _window_box(grid.transform, win).exterior
    pieces: list[Piece] = []
    for class_id in range(1, len(probabilities) + 1):
        hit = mask == class_id
        if not hit.any():
            continue
        prob = probabilities[class_id - 1]
        # polygonize only the hits' bounding box: sites cover a sliver of most tiles
        rows, cols = np.flatnonzero(hit.any(axis=1)), np.flatnonzero(hit.any(axis=0))
        r0, c0 = int(rows[0]), int(cols[0])
        part = hit[r0 : int(rows[-1]) + 1, c0 : int(cols[-1]) + 1]
        at = t * Affine.translation(c0, r0)
        for geom, _ in shapes(part.astype(np.uint8), mask=part, transform=at, connectivity=8):
            poly = shape(geom)
            border = bool(poly.intersects(edge))
            pieces.append(
                Piece(class_id, poly, border, None if border else _attributes(prob, t, poly))
            )
    return pieces


def encode_pieces(pieces: list[Piece]) -> str:
    """Pieces as a tag value (JSON, geometries as hex WKB: exact)."""
    return json.dumps(
        [[p.class_id, p.border, p.scores, to_wkb(p.geometry, hex=True)] for p in pieces],
        separators=(",", ":"),
    )


def decode_pieces(text: str) -> list[Piece]:
    """The pieces of :func:`encode_pieces`."""
    return [
        Piece(int(c), from_wkb(wkb), bool(border), tuple(scores) if scores else None)
        for c, border, scores, wkb in json.loads(text)
    ]


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
    stage: str | os.PathLike[str],
    probabilities_path: str | os.PathLike[str],
    tiles: list[Tile],
    grid: GeoBox,
    classes: list[str],
    aoi: BaseGeometry | None,
    min_area_m2: float = 50.0,
    simplify_px: float = 1.0,
    tags: Mapping[str, dict[str, str] | None] | None = None,
) -> list[Site]:
    """Sites of every foreground class, from the pieces the tiles were stored with.

    Args:
        stage: the job's staging folder (its finished tiles).
        probabilities_path: the probability raster (one band per foreground class): the
            scores of sites merged across tiles.
        tiles: the job's tiles.
        grid: the output grid.
        classes: class names, 0 the background.
        aoi: clip to this area (grid CRS).
        min_area_m2: drop sites smaller than this after clipping.
        simplify_px: simplification tolerance in pixels.
        tags: each tile's tags (``tile_metadata``), when the caller has read them already.

    Returns:
        Sites, unordered.
    """
    stored = [
        _stored_pieces(stage, t.id, tags[t.id] if tags is not None else tile_metadata(stage, t.id))
        for t in tiles
    ]
    tolerance = simplify_px * grid.resolution
    sites: list[Site] = []
    with rasterio.open(probabilities_path) as prob:
        for class_id in range(1, len(classes)):
            for poly, known in _merged(class_id, stored):
                score_max, score_mean = known or site_attributes(prob, poly, class_id)
                geom = poly.simplify(tolerance, preserve_topology=True)
                if aoi is not None and not aoi.contains(geom):
                    geom = make_valid(geom.intersection(aoi))
                    geom = polygonal(geom)
                if geom is None or geom.is_empty or geom.area < min_area_m2:
                    continue
                sites.append(Site(geom, class_id, score_max, score_mean, float(geom.area)))
    return sites


def _stored_pieces(
    stage: str | os.PathLike[str], tile_id: str, tags: dict[str, str] | None
) -> list[Piece]:
    if tags is None:  # a tile with no valid pixel
        return []
    if PIECES_TAG not in tags:
        raise RuntimeError(f"tile {tile_id} of {stage} was stored without its pieces")
    return decode_pieces(tags[PIECES_TAG])


def _merged(
    class_id: int, stored: Iterable[list[Piece]]
) -> list[tuple[BaseGeometry, tuple[float, float] | None]]:
    """The polygons of ``class_id``: the pieces inside their tile, in tile order, with their
    scores; then the border pieces unioned with those they touch across tile borders."""
    final: list[tuple[BaseGeometry, tuple[float, float] | None]] = []
    border: list[BaseGeometry] = []
    for pieces in stored:
        for p in pieces:
            if p.class_id != class_id:
                continue
            if p.border:
                border.append(p.geometry)
            else:
                final.append((p.geometry, p.scores))
    if border:
        merged = union_all(border)
        final.extend((g, None) for g in (merged.geoms if hasattr(merged, "geoms") else [merged]))
    return final
