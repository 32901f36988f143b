"""The job path's shortcuts give what the long way gives: a scene on the grid's lattice read
without warping, tiles batched into one forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from pyproj import CRS
from rasterio.windows import Window

import pipeline.geo.scenes as scenes
from pipeline.geo import GeoBox, open_scenes, read_window
from pipeline.job.predict import TilePredictor
from pipeline.job.tiling import plan_tiles


@pytest.fixture(scope="module")
def grid_and_scenes(survey_scene):
    infos = open_scenes([str(survey_scene.scene)], 3)
    with rasterio.open(survey_scene.scene) as src:
        grid = GeoBox(src.width, src.height, src.transform, CRS.from_wkt(src.crs.to_wkt()))
    return grid, infos


@pytest.mark.parametrize(
    "window",
    [
        Window(0, 0, 200, 150),
        Window(300, 250, 256, 256),
        Window(-40, -24, 128, 96),  # over the scene's top-left corner
        Window(560, 600, 128, 128),  # over its bottom-right corner
    ],
)
def test_a_scene_on_the_grid_lattice_reads_as_through_a_warp(grid_and_scenes, window, monkeypatch):
    grid, infos = grid_and_scenes
    assert scenes._lattice_offset(rasterio.open(infos[0].path), infos[0], grid) == (0, 0)
    fast, fast_valid = read_window(infos, grid, window, 3)
    monkeypatch.setattr(scenes, "_lattice_offset", lambda *a: None)
    warped, warped_valid = read_window(infos, grid, window, 3)
    assert np.array_equal(fast_valid, warped_valid)
    assert fast_valid.any()
    np.testing.assert_allclose(fast[:, fast_valid], warped[:, warped_valid], atol=1e-3)


def test_a_shifted_grid_is_read_at_the_right_pixels(grid_and_scenes):
    grid, infos = grid_and_scenes
    t = grid.transform
    shifted = GeoBox(100, 100, t * t.translation(37, 11), grid.crs)  # whole pixels off
    pixels, valid = read_window(infos, shifted, Window(0, 0, 100, 100), 3)
    with rasterio.open(infos[0].path) as src:
        direct = src.read(window=Window(37, 11, 100, 100)).astype(np.float32)
    assert valid.all() and np.array_equal(pixels, direct)


def test_tiles_batched_in_one_forward_pass_give_the_single_tile_results(
    grid_and_scenes, model_dir, survey_scene
):
    from pipeline.job.execute import Workload

    grid, infos = grid_and_scenes
    predictor = TilePredictor(model_dir, device="cpu")
    card = predictor.card
    tiles = plan_tiles(grid, 192, card.halo, card.align or card.output_stride)
    work = Workload(infos, grid, None, str(model_dir), 3)
    items = [work.read(t) for t in tiles]
    assert len({i.pixels.shape for i in items}) < len(items)  # some share a shape
    batched = predictor.predict_batch(items)
    for item, got in zip(items, batched, strict=True):
        one = predictor.predict(item)
        assert got.tile == one.tile
        assert np.abs(got.probabilities.astype(int) - one.probabilities).max() <= 1
        assert (got.mask != one.mask).mean() < 1e-4
