"""The job path's shortcuts give what the long way gives: a scene on the grid's lattice read
without warping, tiles batched into one forward pass."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch
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


@pytest.mark.parametrize("warped", [False, True])
@pytest.mark.parametrize(
    "window", [Window(100, 80, 200, 150), Window(-40, -24, 128, 96), Window(560, 600, 128, 128)]
)
def test_8_bit_scenes_read_as_they_are_hold_the_float_read_s_values(
    grid_and_scenes, window, warped, monkeypatch, tmp_path
):
    grid, infos = grid_and_scenes
    if warped:
        monkeypatch.setattr(scenes, "_lattice_offset", lambda *a: None)
    assert infos[0].dtype == "uint8"
    floats, valid = read_window(infos, grid, window, 3)
    raw, raw_valid = read_window(infos, grid, window, 3, dtype="uint8")
    assert floats.dtype == np.float32 and raw.dtype == np.uint8
    assert np.array_equal(raw_valid, valid) and np.array_equal(raw.astype(np.float32), floats)
    # a mosaic with a scene of another type is read as float32
    other = tmp_path / "u16.tif"
    with rasterio.open(infos[0].path) as src:
        profile = src.profile | {"dtype": "uint16"}
        with rasterio.open(other, "w", **profile) as dst:
            dst.write(src.read().astype(np.uint16))
    mixed, _ = read_window([*infos, *open_scenes([str(other)], 3)], grid, window, 3, dtype="uint8")
    assert mixed.dtype == np.float32


def test_the_network_sees_the_same_numbers_from_8_bit_pixels(grid_and_scenes, model_dir):
    grid, infos = grid_and_scenes
    window = Window(0, 0, 300, 260)
    floats, valid = read_window(infos, grid, window, 3)
    raw, _ = read_window(infos, grid, window, 3, dtype="uint8")
    for streamed in (True, False):
        predictor = TilePredictor(model_dir, device="cpu", streamed=streamed)
        want = predictor.heatmap(floats, valid)
        assert torch.equal(predictor.heatmap(raw, valid), want)
    # the job's tiles and groups of an 8-bit scene are read so
    from pipeline.job.tiledata import read_group, read_tile
    from pipeline.job.tiling import group_tiles

    tiles = plan_tiles(grid, 160, 16, 4)
    assert read_tile(tiles[0], infos, grid, 3, None).pixels.dtype == np.uint8
    assert read_group(group_tiles(tiles, 2)[0], infos, grid, 3, None).pixels.dtype == np.uint8


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


@pytest.mark.parametrize("side", [2, 3])
def test_tiles_run_as_one_group_window_give_the_single_tile_results(
    grid_and_scenes, model_dir, survey_scene, side
):
    from shapely.geometry import box

    from pipeline.job.execute import Workload
    from pipeline.job.tiling import group_tiles

    grid, infos = grid_and_scenes
    predictor = TilePredictor(model_dir, device="cpu")
    card = predictor.card
    left, bottom, right, top = grid.bounds
    # an AOI that leaves some tiles of a group empty and cuts others
    aoi = box(left, bottom, left + 0.6 * (right - left), top)
    tiles = plan_tiles(grid, 160, card.halo, card.align or card.output_stride, aoi)
    work = Workload(infos, grid, aoi, str(model_dir), 3)
    groups = group_tiles(tiles, side)
    assert any(len(g.tiles) == side * side for g in groups)
    compared = 0
    for group in groups:
        read = work.read_group(group)
        got = predictor.predict_group(read)
        assert [r.tile for r in got] == [t for t in group.tiles if t.id in group.emit]
        for item, result in zip(read.items, got, strict=True):
            alone = work.read(item.tile)
            assert np.array_equal(item.pixels, alone.pixels)
            assert np.array_equal(item.core_mask, alone.core_mask)
            one = predictor.predict(alone)
            assert np.abs(result.probabilities.astype(int) - one.probabilities).max() <= 1
            assert (result.mask != one.mask).mean() < 1e-4
            assert np.array_equal(result.mask == 255, one.mask == 255)
            compared += int(len(group.tiles) > 1)
    assert compared >= side * side


def test_cpu_predictors_stream_the_network_and_get_its_values(
    grid_and_scenes, model_dir, survey_scene
):
    from models import RowStreamed
    from pipeline.job.execute import Workload

    grid, infos = grid_and_scenes
    streamed = TilePredictor(model_dir, device="cpu")
    plain = TilePredictor(model_dir, device="cpu", streamed=False)
    assert isinstance(streamed.model, RowStreamed)
    assert not isinstance(plain.model, RowStreamed)
    streamed.model.budget_bytes = 1 << 20  # stripes of ~50 rows on this small tile
    card = streamed.card
    tiles = plan_tiles(grid, 256, card.halo, card.align or card.output_stride)
    item = Workload(infos, grid, None, str(model_dir), 3).read(tiles[0])
    got = streamed.heatmap(item.pixels, item.valid)
    want = plain.heatmap(item.pixels, item.valid)
    assert streamed.model.stripe_rows((1, *item.pixels.shape)) < item.pixels.shape[1]
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6, rtol=0)
    a, b = streamed.predict(item), plain.predict(item)
    assert (a.probabilities == b.probabilities).all() and (a.mask == b.mask).all()


def test_a_scene_rewritten_in_place_is_read_anew(tmp_path, grid_and_scenes):
    """Scenes stay open between reads (their decoded blocks serve the next tile's halo), but
    a file replaced under the same name is opened again."""
    grid, infos = grid_and_scenes
    path = tmp_path / "scene.tif"
    with rasterio.open(infos[0].path) as src:
        profile, data = src.profile, src.read()
    for value in (data, 255 - data):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(value)
        moved = [type(infos[0])(**{**infos[0].__dict__, "path": str(path)})]
        pixels, valid = read_window(moved, grid, Window(10, 20, 64, 64), 3)
        expect = value[:, 20:84, 10:74].astype(np.float32)
        assert np.array_equal(pixels[:, valid], expect[:, valid])


def test_each_actor_works_through_its_own_run_then_takes_the_far_end_of_the_longest():
    from pipeline.job.placement import Dispatch as _Dispatch

    batches = [[i] for i in range(10)]
    d = _Dispatch(batches, 3)  # runs 0-3, 4-7, 8-9
    assert [d.next_for(0), d.next_for(1), d.next_for(2)] == [[0], [4], [8]]
    assert d.next_for(2) == [9]
    assert d.next_for(2) == [3]  # its run is done: the end of the longest other run
    taken = [d.next_for(i % 3) for i in range(10)]
    got = [b[0] for b in taken if b is not None]
    assert sorted(got) == [1, 2, 5, 6, 7] and taken[-1] is None


def test_the_last_calls_go_to_actors_with_none_in_flight():
    """Two calls deep while many are left; once no more are left than actors, an actor with a
    call in flight gets none (it would wait behind that call while another actor is idle),
    an idle one does; every call is given once."""
    from pipeline.job.placement import Dispatch as _Dispatch

    d = _Dispatch([[i] for i in range(8)], 2)  # runs 0-3 and 4-7
    given = [d.take(0), d.take(0), d.take(0), d.take(1), d.take(1)]
    assert given == [[0], [1], None, [4], [5]]  # two deep
    d.finished(0)
    assert d.take(0) == [2]  # 4 left before: more than the actors
    d.finished(1)
    assert d.take(1) == [6] and d.left() == 2
    d.finished(0)  # actor 0 still has a call in flight, and only 2 are left: none for it
    assert d.take(0) is None
    d.finished(0)  # now it is idle
    assert d.take(0) == [3] and d.take(0) is None
    d.finished(1)
    assert d.take(1) is None  # one in flight
    d.finished(1)
    assert d.take(1) == [7]
    d.finished(0)
    assert d.take(0) is None and d.left() == 0


def _rgb_tif(path, pixels, block):  # type: ignore[no-untyped-def]
    """A tiled 8-bit RGB GeoTIFF (nodata 0, 1 m UTM pixels) of ``pixels`` (3, h, w)."""
    from affine import Affine

    _, h, w = pixels.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8", nodata=0,
        crs="EPSG:32632", transform=Affine(1, 0, 500000, 0, -1, 5000000), tiled=True,
        blockxsize=block, blockysize=block,
    ) as dst:  # fmt: skip
        dst.write(pixels)
    return path


def test_a_scene_without_overviews_is_sampled_for_its_picture(tmp_path):
    """Strips sampled at twice the picture's size and averaged 2 x 2 give what GDAL's average
    over every pixel gives, give or take the texture; nodata stays white."""

    from pipeline.report.sampling import read_rgb

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1200, 0:1000]
    smooth = np.stack([(x / 4) % 256, (y / 5) % 256, ((x + y) / 9) % 256]).astype(np.uint8)
    noisy = np.clip(smooth + rng.integers(-20, 21, smooth.shape), 1, 255).astype(np.uint8)
    noisy[:, 100:300, 100:400] = 0  # nodata
    path = _rgb_tif(tmp_path / "s.tif", noisy, block=256)
    with rasterio.open(path) as src:
        assert not src.overviews(1)
        rgb, transform = read_rgb(src, None, (120, 100))
        full = src.read(out_shape=(3, 120, 100), resampling=rasterio.enums.Resampling.average)
    assert rgb.shape == (120, 100, 3) and transform.a == pytest.approx(10)
    assert (rgb[12:28, 12:38] == 255).all()  # the hole, well inside
    inside = np.ones((120, 100), bool)
    inside[8:32, 8:42] = False
    diff = np.abs(rgb.transpose(2, 0, 1).astype(int) - full)[:, inside]
    assert diff.mean() < 6


def test_a_picture_s_samples_are_the_same_read_in_small_pieces_or_partly_known(
    tmp_path, monkeypatch
):
    """However the scene is cut for reading (strips, column chunks) and whichever samples are
    known already, a sampled picture has the same pixels."""

    import pipeline.report.sampling as sampling

    rng = np.random.default_rng(1)
    pixels = rng.integers(1, 256, (3, 1300, 1100)).astype(np.uint8)
    pixels[:, 400:520, 600:900] = 0  # nodata
    path = _rgb_tif(tmp_path / "s.tif", pixels, block=128)
    with rasterio.open(path) as src:
        window = Window(37, 51, 1000, 1200)
        lattice = sampling.sample_lattice(src, window, (120, 100))
        assert lattice is not None
        whole, whole_valid = sampling._sample(src, lattice, [])
        rows, cols = lattice.pixel_rows(), lattice.pixel_cols()
        assert np.array_equal(whole, pixels[:, rows][:, :, cols])  # the lattice's own pixels
        # a holder of part of the raster (a tile) takes its samples
        part = Window(300, 200, 500, 700)
        taken = lattice.take(part, pixels.astype(np.float32), pixels.all(axis=0), (0, 0))
        assert taken is not None
        again = sampling.Samples.decode(taken.encode())
        monkeypatch.setattr(sampling, "_READ_BYTES", 3 * 64 * 128)
        monkeypatch.setattr(sampling, "_STRIP_ROWS", 64)
        small, small_valid = sampling._sample(src, lattice, [again])
    assert np.array_equal(small, whole) and np.array_equal(small_valid, whole_valid)


def test_samples_of_another_lattice_are_not_taken():
    """A tile's stored samples name their lattice: those of other code or inputs are ignored."""
    from pipeline.job.tiledata import PictureLattice, TileInput
    from pipeline.report.sampling import SampleLattice

    lattice = SampleLattice(0, 0, 5.0, 5.0, 40, 40)
    tile = plan_tiles(GeoBox.from_bounds((0, 0, 200, 200), 1.0, CRS.from_epsg(32632)), 100, 0, 1)[0]
    item = TileInput(tile, np.full((3, 100, 100), 7, np.float32), np.ones((100, 100), bool), None)  # type: ignore[arg-type]
    text = PictureLattice(lattice, "aaaa").take(item)
    assert text is not None
    got = PictureLattice(lattice, "aaaa").known(text)
    assert got is not None and (got.rgb == 7).all() and got.valid.shape == (20, 20)
    assert PictureLattice(lattice, "bbbb").known(text) is None
    assert PictureLattice(lattice, "aaaa").known(None) is None


def test_a_model_actor_starts_without_the_driver_s_libraries(model_dir):
    """What a model actor imports to read tiles and load its model leaves out geopandas,
    pandas (the vector side of ``pipeline.geo``), sympy (fx's ``ShapeProp``) and Prefect:
    seconds of CPU at every actor's start."""
    import subprocess
    import sys

    code = f"""
import sys
from pipeline.job.execute import _PredictorActor, Workload
predictor = Workload([], None, None, {str(model_dir)!r}, 3).predictor("cpu", 1)
heavy = [m for m in ("geopandas", "pandas", "sympy", "prefect") if m in sys.modules]
assert not heavy, heavy
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_blocks_are_kept_for_the_next_ones():
    """After ``retain_freed_memory`` (what model actors and the local executor call), blocks
    of a few MB allocated and freed again and again (a stream's stripes) take no fresh pages:
    without it glibc gives the freed top of its heap back and faults the pages in again."""
    code = """
import sys
import numpy as np
from pipeline.cluster import retain_freed_memory
took = retain_freed_memory() if sys.argv[1] == "1" else None
def faults():
    return int(open("/proc/self/stat").read().split()[9])
def blocks():
    a = np.ones(20 << 17); b = np.ones(20 << 17)  # two 20 MB blocks, touched
    del b, a
blocks()
start = faults()
for _ in range(20):
    blocks()
print(took, faults() - start)
"""

    def run(tuned: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", code, tuned], capture_output=True, text=True, check=True
        )
        return out.stdout.split()

    took, tuned = run("1")
    assert took == "True"
    assert int(tuned) < 200  # 20 rounds of 40 MB are 200 000 pages of 4 KB
    # (glibc's default here: about 20 000 faults, less with transparent huge pages)
