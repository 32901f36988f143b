"""The job's rasters of the whole grid (``work/*.flat.tif``): the tiles are copied into them as
they arrive, and those of an earlier run when a resumed run assembles; the COGs made from them
are byte for byte those made from the VRT mosaics of the tile files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling

from pipeline.geo import NODATA, GeoBox, RasterWriter, work_rasters
from pipeline.geo.mosaic import BandSpec, TileStore, write_mosaic_vrt
from pipeline.geo.rasters import WORK, _flat_paths, _to_cog
from pipeline.job.tiling import plan_tiles

# not a multiple of the flat rasters' 512-px blocks, nor of the tile sizes below
GRID = GeoBox(610, 530, Affine(0.5, 0, 500000.0, 0, -0.5, 5000000.0), CRS.from_epsg(32632))
CLASSES = ["background", "landfill", "tyres"]


def _layers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    probs = rng.integers(0, 255, (2, GRID.height, GRID.width), dtype=np.uint8)
    mask = rng.integers(0, 3, (GRID.height, GRID.width), dtype=np.uint8)
    saliency = rng.integers(0, 255, (GRID.height, GRID.width), dtype=np.uint8)
    mask[:260, :270] = NODATA  # at least one whole tile without valid pixels: no tile file
    probs[:, mask == NODATA] = NODATA
    saliency[mask == NODATA] = NODATA
    return probs, mask, saliency


def _write(writer, tiles, layers, skip=frozenset()):
    probs, mask, saliency = layers
    for t in tiles:
        if t.id in skip:
            continue
        r0, c0 = int(t.core.row_off), int(t.core.col_off)
        h, w = int(t.core.height), int(t.core.width)
        rows, cols = slice(r0, r0 + h), slice(c0, c0 + w)
        writer.write(t.id, t.core, probs[:, rows, cols], mask[rows, cols], saliency[rows, cols])


@pytest.mark.parametrize("tile_size", [70, 256])
def test_flat_rasters_hold_every_tile_of_this_run_and_of_the_one_it_resumes(tmp_path, tile_size):
    layers = _layers()
    tiles = plan_tiles(GRID, tile_size, 0, 1)
    first = tiles[: len(tiles) // 2]
    with RasterWriter(tmp_path, GRID, CLASSES, saliency="landfill") as writer:
        _write(writer, first, layers)  # then "killed": never assembled
    with RasterWriter(tmp_path, GRID, CLASSES, saliency="landfill") as writer:
        assert writer.done == {t.id for t in first}
        _write(writer, tiles, layers, skip=writer.done)
        assert writer.written == len(tiles) - len(first)
        writer.finish()
    empty = [t for t in tiles if (layers[1][t.core.toslices()] == NODATA).all()]
    assert empty  # a tile the store keeps no file of still reads nodata
    want = [layers[0], layers[1][None], layers[2][None]]
    for path, expected in zip(_flat_paths(tmp_path), want, strict=True):
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(), expected)
    for vrt, expected in zip(work_rasters(tmp_path), want, strict=False):
        with rasterio.open(vrt) as src:
            np.testing.assert_array_equal(src.read(), expected)
            assert src.nodata == NODATA
    with rasterio.open(tmp_path / "probabilities.tif") as cog:
        np.testing.assert_array_equal(cog.read(), layers[0])
        assert cog.scales == (1 / 254, 1 / 254)
        assert cog.descriptions == ("p(landfill)", "p(tyres)")
    with rasterio.open(tmp_path / "mask.tif") as cog:
        np.testing.assert_array_equal(cog.read(1), layers[1])
        assert cog.colormap(1)[1] is not None


@pytest.mark.parametrize(("band", "resampling"), [(1, Resampling.average), (3, Resampling.nearest)])
def test_a_cog_from_the_flat_raster_is_the_cog_from_the_tile_files(tmp_path, band, resampling):
    layers = _layers()
    tiles = plan_tiles(GRID, 70, 0, 1)
    with RasterWriter(tmp_path, GRID, CLASSES, saliency="landfill") as writer:
        _write(writer, tiles, layers)
        writer.assemble()
    store = TileStore(tmp_path / WORK, GRID, NODATA)  # the tiles' files, reopened
    try:
        spec = [BandSpec(band, "b", 1 / 254)]
        meta = {"CLASSES": ",".join(CLASSES)}
        from_tiles = write_mosaic_vrt(tmp_path / "tiles.vrt", store, GRID, spec, meta)
        flat = _flat_paths(tmp_path)[0 if band == 1 else 1]
        from_flat = write_mosaic_vrt(tmp_path / "flat.vrt", store, GRID, spec, meta, flat)
    finally:
        store.close()
    with rasterio.open(flat) as src:
        assert src.block_shapes[0] == (512, 512)
        np.testing.assert_array_equal(
            src.read(1), layers[0 if band == 1 else 1].reshape(-1, GRID.height, GRID.width)[0]
        )
    # what the job did before: the tiles' mosaic copied into one tiled GeoTIFF of the same
    # blocks, then converted (the statistics' sums run over the blocks: same blocks, same bytes)
    copied = tmp_path / "copied.vrt"
    rasterio.shutil.copy(
        from_tiles, copied.with_suffix(".tif"), driver="GTiff", TILED="YES", BLOCKXSIZE=512,
        BLOCKYSIZE=512,
    )  # fmt: skip
    write_mosaic_vrt(copied, store, GRID, spec, meta, copied.with_suffix(".tif"))
    _to_cog(copied, tmp_path / "before.tif", resampling)
    _to_cog(from_flat, tmp_path / "now.tif", resampling)
    assert (tmp_path / "before.tif").read_bytes() == (tmp_path / "now.tif").read_bytes()
    _to_cog(from_tiles, tmp_path / "tiles.tif", resampling)
    with rasterio.open(tmp_path / "tiles.tif") as a, rasterio.open(tmp_path / "now.tif") as b:
        assert a.overviews(1) == b.overviews(1) == [2]
        for shape in [(a.height, a.width), (a.height // 2, a.width // 2)]:
            np.testing.assert_array_equal(a.read(1, out_shape=shape), b.read(1, out_shape=shape))
        stats_a, stats_b = a.tags(1), b.tags(1)
        assert stats_a.keys() == stats_b.keys()
        for key in stats_a:  # the same up to the order of the sums
            assert float(stats_a[key]) == pytest.approx(float(stats_b[key]), rel=1e-6)


def _read_all(folder) -> list[np.ndarray]:
    out = []
    for vrt in work_rasters(folder):
        with rasterio.open(vrt) as src:
            out.append(src.read())
    return out


def test_the_rasters_are_whole_however_the_writer_is_driven(tmp_path):
    layers = _layers()
    tiles = plan_tiles(GRID, 256, 0, 1)
    want = [layers[0], layers[1][None]]
    # a resumed run's tiles, assembled after the writer was closed
    with RasterWriter(tmp_path / "a", GRID, CLASSES, saliency="landfill") as writer:
        _write(writer, tiles[:3], layers)
    writer = RasterWriter(tmp_path / "a", GRID, CLASSES, saliency="landfill")
    with writer:
        _write(writer, tiles, layers, skip=writer.done)
    writer.assemble()
    assert all(np.array_equal(a, b) for a, b in zip(_read_all(tmp_path / "a"), want, strict=True))
    # a tile written after assembling, then assembled again; a writer entered twice
    writer = RasterWriter(tmp_path / "b", GRID, CLASSES, saliency="landfill")
    with writer:
        _write(writer, tiles[:-1], layers)
        writer.assemble()
        _write(writer, tiles[-1:], layers)
        writer.assemble()
    assert all(np.array_equal(a, b) for a, b in zip(_read_all(tmp_path / "b"), want, strict=True))
    with writer:
        assert writer.done == {t.id for t in tiles}
        writer.assemble()
    assert all(np.array_equal(a, b) for a, b in zip(_read_all(tmp_path / "b"), want, strict=True))
