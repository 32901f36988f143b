from __future__ import annotations

import hashlib
import json

import numpy as np
import rasterio
from rasterio.windows import Window
from shapely.geometry import shape

from pipeline.synth import render_block, synth_scene


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_seeded_and_georeferenced(tmp_path):
    a = synth_scene(tmp_path / "a", size=256, gsd=0.5, seed=5, landfills=4)
    b = synth_scene(tmp_path / "b", size=256, gsd=0.5, seed=5, landfills=4)
    c = synth_scene(tmp_path / "c", size=256, gsd=0.5, seed=6, landfills=4)
    with rasterio.open(a.scene) as sa, rasterio.open(b.scene) as sb, rasterio.open(c.scene) as sc:
        assert np.array_equal(sa.read(), sb.read())
        assert not np.array_equal(sa.read(), sc.read())
        assert sa.crs.to_epsg() == 32632 and sa.res == (0.5, 0.5)
        assert sa.nodata == 0 and sa.count == 3 and (sa.width, sa.height) == (256, 256)
        assert sa.tags()["ACQUISITION_DATE"] == "2026-06-15"
    assert _digest(a.truth) == _digest(b.truth)
    truth = json.loads(a.truth.read_text())["features"]
    aoi = shape(json.loads(a.aoi.read_text())["features"][0]["geometry"])
    assert len(truth) == a.n_sites >= 1
    for f in truth:
        assert aoi.contains(shape(f["geometry"]))
        assert f["properties"]["class"] == "landfill"


def test_blocks_render_independently(tmp_path):
    r = synth_scene(tmp_path / "s", size=300, gsd=0.5, seed=2, landfills=3)
    from pipeline.synth import make_sites

    sites = make_sites(__import__("shapely").geometry.box(*r.grid.bounds).buffer(-30), 3, 2)
    whole = render_block(r.grid, Window(0, 0, 300, 300), sites, 2)
    part = render_block(r.grid, Window(123, 77, 64, 90), sites, 2)
    np.testing.assert_allclose(part, whole[:, 77:167, 123:187], atol=1e-3)


def test_aoi_scene_has_nodata_outside(tmp_path):
    from tests.conftest import MUNICIPALITIES

    r = synth_scene(
        tmp_path / "m", aoi=MUNICIPALITIES, select=["108014"], gsd=4.0, seed=1, landfills=3
    )
    with rasterio.open(r.scene) as src:
        mask = src.dataset_mask()
    assert 0.2 < (mask == 0).mean() < 0.9  # a municipality is not a rectangle
    props = json.loads(r.aoi.read_text())["features"][0]["properties"]
    assert props["com_istat_code"] == "108014" and props["name"] == "Camparada"
