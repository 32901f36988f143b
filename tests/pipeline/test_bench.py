"""`wastewatch bench`: its inputs checked, its mosaics true to their scene, its bare model
measured."""

from __future__ import annotations

import pytest
import rasterio

from pipeline.bench.job import bare_model, bare_model_per_core, corner_aoi

from ..helpers import assert_bad_input, wastewatch


@pytest.mark.parametrize("sizes", ["0", "25,abc", ""])
def test_bad_sizes_are_one_line(tmp_path, sizes):
    proc = wastewatch("bench", "job", "--sizes", sizes, "--work", str(tmp_path))
    assert_bad_input(proc, "--sizes")


def test_a_repeat_below_one_is_one_line(tmp_path):
    proc = wastewatch("bench", "job", "--repeat", "0", "--work", str(tmp_path))
    assert_bad_input(proc, "--repeat")


def test_cuda_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = wastewatch("bench", "job", "--device", "cuda", "--work", str(tmp_path))
    assert_bad_input(proc, "--device cuda")


def test_a_corner_aoi_covers_the_scene_s_top_left_square(tmp_path, survey_scene):
    import geopandas as gpd

    aoi = corner_aoi(survey_scene.scene, 200, tmp_path / "a.gpkg")
    with rasterio.open(survey_scene.scene) as src:
        area = gpd.read_file(aoi).to_crs(src.crs.to_wkt()).geometry.iloc[0]
        left, top = src.transform.c, src.transform.f
        side = 200 * src.transform.a
    assert area.bounds == pytest.approx((left, top - side, left + side, top))


def test_the_bare_model_is_measured(model_dir):
    bare = bare_model(str(model_dir), 128, "cpu", seconds=0.2)
    assert bare["passes"] >= 5 and bare["megapixels_per_second"] > 0
    cores = bare_model_per_core(str(model_dir), 128, seconds=0.2)
    assert cores["processes"] == len(cores["each_megapixels_per_second"]) >= 1
    assert cores["megapixels_per_second"] == pytest.approx(
        sum(cores["each_megapixels_per_second"]), abs=1e-2
    )
    assert bare["input_px"] == [128, 128]


def test_the_sustained_bare_model_runs_as_many_pixels_as_asked(model_dir):
    bare = bare_model(str(model_dir), 128, "cpu", megapixels=0.5)
    assert bare["passes"] == 31  # ceil(0.5 Mpx / 16384 px)
    assert 0 < bare["megapixels_per_second"] <= bare["fastest_10s_megapixels_per_second"] * 1.001


def test_the_fastest_window_is_the_best_run_of_passes():
    from pipeline.bench.job import _fastest_window

    # 1 Mpx passes: four slow (2 s) then four fast (1 s); the best 3 s is three fast passes
    assert _fastest_window([2, 2, 2, 2, 1, 1, 1, 1], 1.0, 3.0) == pytest.approx(1.0)
    # at least 4 s: 2+1+1 (3 px in 4 s) loses to 1+1+1+2 (4 px in 5 s)
    assert _fastest_window([2, 2, 1, 1, 1, 2], 1.0, 4.0) == pytest.approx(4 / 5)
    # shorter than the window: the whole run
    assert _fastest_window([1, 1], 1.0, 10.0) == pytest.approx(1.0)
