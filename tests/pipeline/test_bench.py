"""`wastewatch bench`: its inputs checked, its mosaics true to their scene, its bare model
measured."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from pipeline.bench.job import bare_model, mosaic

from ..helpers import assert_bad_input, wastewatch


@pytest.mark.parametrize("sizes", ["0", "25,abc", ""])
def test_bad_sizes_are_one_line(tmp_path, sizes):
    proc = wastewatch("bench", "job", "--sizes", sizes, "--work", str(tmp_path))
    assert_bad_input(proc, "--sizes")


def test_cuda_without_a_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = wastewatch("bench", "job", "--device", "cuda", "--work", str(tmp_path))
    assert_bad_input(proc, "--device cuda")


def test_a_mosaic_is_k_by_k_copies_of_its_scene(tmp_path, survey_scene):
    import geopandas as gpd

    vrt, aoi = mosaic(survey_scene.scene, 2, tmp_path / "m")
    with rasterio.open(survey_scene.scene) as one, rasterio.open(vrt) as big:
        w, h = one.width, one.height
        assert (big.width, big.height) == (2 * w, 2 * h)
        assert big.transform == one.transform and big.crs == one.crs
        assert big.nodata == one.nodata
        scene = one.read()
        for i in range(2):
            for j in range(2):
                assert np.array_equal(big.read(window=Window(j * w, i * h, w, h)), scene)
        area = gpd.read_file(aoi).to_crs(big.crs.to_wkt()).geometry.iloc[0]
        assert area.bounds == pytest.approx(tuple(big.bounds))


def test_the_bare_model_is_measured(model_dir):
    bare = bare_model(str(model_dir), 128, "cpu", seconds=0.2)
    assert bare["passes"] >= 5 and bare["megapixels_per_second"] > 0
    assert bare["input_px"] == [128, 128]
