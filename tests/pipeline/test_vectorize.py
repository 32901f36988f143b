"""Vectorizing by tiles: each tile polygonized where its result is made, its pieces stored with
its file, merged across tile borders into the sites a whole-raster pass gives."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.features import shapes
from shapely import contains_xy, union_all
from shapely.geometry import shape

from pipeline.geo import NODATA, GeoBox, RasterWriter, work_rasters
from pipeline.job.tiling import plan_tiles
from pipeline.job.vectorize import (
    PIECES_TAG,
    decode_pieces,
    encode_pieces,
    tile_pieces,
    vectorize,
)

GRID = GeoBox(200, 160, Affine(0.5, 0, 500000.0, 0, -0.5, 5000000.0), CRS.from_epsg(32632))
CLASSES = ["background", "landfill", "tyres"]


def _rasters() -> tuple[np.ndarray, np.ndarray]:
    """A class mask with blobs inside tiles, across tile borders and across a tile corner,
    and probabilities that vary inside each blob."""
    rng = np.random.default_rng(3)
    mask = np.zeros((160, 200), np.uint8)
    mask[10:30, 10:40] = 1  # inside the first tile
    mask[50:90, 40:90] = 1  # across the border at column 64 and row 64
    mask[100:150, 120:135] = 2  # another class, across column 128
    mask[60:70, 60:70] = 2
    mask[150:160, 0:20] = NODATA
    probs = np.where(mask[None] == np.arange(1, 3)[:, None, None], 200, 10).astype(np.uint8)
    probs = (probs - rng.integers(0, 60, probs.shape) * (probs > 100)).astype(np.uint8)
    probs[:, mask == NODATA] = NODATA
    return mask, probs


def _stage(tmp_path, mask, probs, tile_size):
    tiles = plan_tiles(GRID, tile_size, 0, 1)
    with RasterWriter(tmp_path, GRID, CLASSES) as writer:
        for t in tiles:
            r0, c0 = int(t.core.row_off), int(t.core.col_off)
            h, w = int(t.core.height), int(t.core.width)
            m, p = mask[r0 : r0 + h, c0 : c0 + w], probs[:, r0 : r0 + h, c0 : c0 + w]
            pieces = encode_pieces(tile_pieces(t, GRID, m, p))
            writer.write(t.id, t.core, p, m, tags={PIECES_TAG: pieces})
        writer.finish()
    return tiles


@pytest.mark.parametrize("tile_size", [64, 200])
def test_sites_from_tile_pieces_are_those_of_the_whole_raster(tmp_path, tile_size):
    mask, probs = _rasters()
    tiles = _stage(tmp_path, mask, probs, tile_size)
    sites = vectorize(tmp_path, work_rasters(tmp_path)[0], tiles, GRID, CLASSES, None, 0, 0)
    for class_id in (1, 2):
        hit = mask == class_id
        whole = [
            shape(g) for g, _ in shapes(hit.astype(np.uint8), mask=hit, transform=GRID.transform)
        ]
        got = [s for s in sites if s.class_id == class_id]
        assert len(got) == len(whole)
        assert union_all([s.geometry for s in got]).symmetric_difference(
            union_all(whole)
        ).area == pytest.approx(0, abs=1e-9)
        for s in got:
            inside = np.zeros_like(hit)
            rows, cols = np.nonzero(hit)
            xs, ys = GRID.transform * (cols + 0.5, rows + 0.5)
            sel = contains_xy(s.geometry, xs, ys)
            inside[rows[sel], cols[sel]] = True
            values = probs[class_id - 1][inside]
            assert s.score_max == pytest.approx(values.max() / 254)
            assert s.score_mean == pytest.approx(values.mean() / 254)


def test_pieces_round_trip_exactly_and_travel_with_the_tile_file(tmp_path):
    mask, probs = _rasters()
    tiles = _stage(tmp_path, mask, probs, 64)
    t = tiles[0]
    pieces = tile_pieces(t, GRID, mask[:64, :64], probs[:, :64, :64])
    assert pieces and any(p.border for p in pieces) and any(not p.border for p in pieces)
    again = decode_pieces(encode_pieces(pieces))
    assert [(p.class_id, p.border, p.scores) for p in again] == [
        (p.class_id, p.border, p.scores) for p in pieces
    ]
    assert all(a.geometry.equals_exact(b.geometry, 0) for a, b in zip(again, pieces, strict=True))
    with rasterio.open(tmp_path / "work" / "tiles" / f"{t.id}.tif") as src:
        assert decode_pieces(src.tags()[PIECES_TAG])[0].geometry.equals_exact(pieces[0].geometry, 0)


def test_a_tile_stored_without_its_pieces_is_an_error_not_a_loss(tmp_path):
    mask, probs = _rasters()
    tiles = plan_tiles(GRID, 200, 0, 1)
    with RasterWriter(tmp_path, GRID, CLASSES) as writer:
        writer.write(tiles[0].id, tiles[0].core, probs, mask)
        writer.finish()
    with pytest.raises(RuntimeError, match="without its pieces"):
        vectorize(tmp_path, work_rasters(tmp_path)[0], tiles, GRID, CLASSES, None)
