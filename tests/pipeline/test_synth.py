from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from shapely.geometry import box, shape

from pipeline.synthetic import render_block, synth_scene


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
    from pipeline.synthetic import make_sites

    sites = make_sites(box(*r.grid.bounds).buffer(-30), 3, 2)
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


def test_sites_have_sizes_and_styles(tmp_path):
    from pipeline.synthetic import SITE_STYLES, make_sites

    sites = make_sites(box(0, 0, 2000, 2000), 60, seed=3)
    assert len(sites) == 60
    areas = [s.geometry.area for s in sites]
    assert min(areas) >= 100 * 0.99 and max(areas) <= 5000 * 1.01
    assert {s.style for s in sites} == set(SITE_STYLES)
    for i, a in enumerate(sites):
        for b in sites[i + 1 :]:
            assert a.geometry.distance(b.geometry) >= 25


def test_revisit_changes_sites_and_keeps_the_landscape(tmp_path):
    from pipeline.synthetic import synth_revisit

    a = synth_scene(tmp_path / "a", size=512, gsd=0.5, seed=8, landfills=10)
    b = synth_revisit(tmp_path / "a", tmp_path / "b", seed=4)
    before = {f["properties"]["site_id"]: f for f in json.loads(a.truth.read_text())["features"]}
    after = json.loads(b.truth.read_text())["features"]
    status = {f["properties"]["site_id"]: f["properties"]["status"] for f in after}
    assert set(status.values()) <= {"new", "persisting", "grown", "shrunk", "disappeared"}
    assert "new" in status.values() and len(set(status.values())) >= 3
    for f in after:
        sid, st = f["properties"]["site_id"], f["properties"]["status"]
        if st == "new":
            assert sid not in before
            continue
        old = shape(before[sid]["geometry"])
        new = shape(f["geometry"])
        ratio = new.area / old.area
        expect = {
            "persisting": (0.999, 1.001),
            "grown": (1.5, 2.6),
            "shrunk": (0.3, 0.65),
            "disappeared": (0.999, 1.001),
        }[st]
        assert expect[0] <= ratio <= expect[1], (st, ratio)
    assert set(before) <= set(status)  # every earlier site is accounted for
    with rasterio.open(a.scene) as sa, rasterio.open(b.scene) as sb:
        assert sa.transform == sb.transform and sa.crs == sb.crs
        assert sb.tags()["ACQUISITION_DATE"] == "2027-06-15"
        xa, xb = sa.read().astype(int), sb.read().astype(int)
    assert 0.05 < (np.abs(xa - xb).max(0) > 12).mean() < 0.9  # crops and sites change, not all


def test_hash_is_the_32_bit_lattice_hash():
    from pipeline.synthetic.noise import hash01

    rng = np.random.default_rng(0)
    ix, iy = rng.integers(-(2**40), 2**40, 5000), rng.integers(-(2**40), 2**40, 5000)
    m = np.uint64(0xFFFFFFFF)
    x, y = ix.astype(np.uint64) & m, iy.astype(np.uint64) & m
    h = (x * np.uint64(374761393) + y * np.uint64(668265263) + np.uint64(7 * 2654435761)) & m
    h = ((h ^ (h >> np.uint64(13))) * np.uint64(1274126177)) & m
    h = ((h ^ (h >> np.uint64(16))) * np.uint64(2246822519)) & m
    h = h ^ (h >> np.uint64(13))
    assert np.array_equal(hash01(ix, iy, 7), (h.astype(np.float64) / 2**32).astype(np.float32))
    assert np.array_equal(
        hash01(ix[:40, None], iy[None, :30], 7),
        hash01(*np.meshgrid(ix[:40], iy[:30], indexing="ij"), 7),
    )


@pytest.mark.parametrize("res", [0.3, 1.0, 12.0])
def test_grid_noise_is_the_per_pixel_noise(res):
    from pipeline.synthetic.noise import (
        fbm,
        fbm_grid,
        hash01,
        value_noise,
        value_noise_grid,
        voronoi,
        voronoi_grid,
    )

    xc = 512345.7 + (np.arange(230) + 0.5) * res
    yr = 5049876.3 - (np.arange(170) + 0.5) * res
    x, y = np.meshgrid(xc, yr)
    assert np.array_equal(value_noise_grid(xc, yr, 6.0, 3), value_noise(x, y, 6.0, 3))
    assert np.array_equal(fbm_grid(xc, yr, 6.0, 3), fbm(x, y, 6.0, 3))
    cx, cy, d1, d2 = voronoi(x, y, 90.0, 3)
    cells = voronoi_grid(xc, yr, 90.0, 3)
    assert np.array_equal(cells.lx[cells.index], cx) and np.array_equal(cells.ly[cells.index], cy)
    assert np.array_equal(cells.d1, d1) and np.array_equal(cells.d2, d2)
    assert np.array_equal(cells.hash(5)[cells.index], hash01(cx, cy, 5))


def test_distances_round_like_hypot_next_to_float32_midpoints():
    from pipeline.synthetic.noise import _distance32

    rng = np.random.default_rng(1)
    dx = rng.uniform(-100, 100, 256)
    t = rng.uniform(1, 200, (256, 256)).astype(np.float32).astype(np.float64)
    mid = t + np.spacing(t.astype(np.float32)).astype(np.float64) / 2  # float32 rounding ties
    near = mid * (1 + rng.integers(-8, 9, mid.shape) * 2.0**-52)
    dy = np.sqrt(np.maximum(near**2 - dx**2, 0)) * np.where(
        rng.uniform(size=mid.shape) < 0.5, -1, 1
    )
    expected = np.hypot(dx, dy).astype(np.float32)
    assert np.array_equal(_distance32(dx, dy.copy(), np.empty_like(dy)), expected)


def test_revisit_keeps_the_nodata_of_its_scene(tmp_path, monkeypatch):
    from pipeline.synthetic import revisit, scene, synth_revisit
    from tests.conftest import MUNICIPALITIES

    monkeypatch.setattr(scene, "BLOCK", 128)  # several blocks: empty, partial and full ones
    monkeypatch.setattr(revisit, "BLOCK", 128)
    a = synth_scene(
        tmp_path / "a", aoi=MUNICIPALITIES, select=["108014"], gsd=4.0, seed=1, landfills=6
    )
    like = revisit._LikeMask(a.scene, 128)
    assert like.full and like.partial
    with pytest.raises(ValueError, match="blocks"):
        like(Window(64, 0, 128, 128))
    b = synth_revisit(tmp_path / "a", tmp_path / "b", seed=2, new=4)
    with rasterio.open(a.scene) as sa, rasterio.open(b.scene) as sb:
        valid = sa.dataset_mask() > 0
        assert np.array_equal(sb.dataset_mask() > 0, valid)
        assert (valid.shape[0] // 128 + 1) * (valid.shape[1] // 128 + 1) > len(like.full) + len(
            like.partial
        )  # and empty blocks
        xa, xb = sa.read().astype(int), sb.read().astype(int)
    assert 0.05 < (np.abs(xa - xb).max(0)[valid] > 12).mean() < 0.9
    after = json.loads(b.truth.read_text())["features"]
    aoi = shape(json.loads(a.aoi.read_text())["features"][0]["geometry"])
    new = [shape(f["geometry"]) for f in after if f["properties"]["status"] == "new"]
    assert new and all(aoi.buffer(1e-4).contains(g) for g in new)
