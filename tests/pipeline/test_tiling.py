from __future__ import annotations

import numpy as np
import pytest
import torch
from pyproj import CRS
from rasterio.windows import Window
from shapely.geometry import box

from pipeline.errors import InputError
from pipeline.geo import GeoBox, open_scenes, read_window
from pipeline.job.predict import TilePredictor, read_tile, upsample_heatmap
from pipeline.job.tiling import group_tiles, plan_tiles
from tests.helpers import SMALL_ARCH_ARGS, rgb_card

GRID = GeoBox.from_bounds(
    (500000, 5000000, 500000 + 0.5 * 333, 5000000 + 0.5 * 250), 0.5, CRS.from_epsg(32632)
)


def test_tiles_cover_the_grid_once_and_align_to_the_stride():
    tiles = plan_tiles(GRID, 100, halo=20, align=4)
    cover = np.zeros(GRID.shape, int)
    for t in tiles:
        cover[
            t.core.row_off : t.core.row_off + t.core.height,
            t.core.col_off : t.core.col_off + t.core.width,
        ] += 1
        assert t.read.col_off % 4 == 0 and t.read.row_off % 4 == 0
        assert t.read.width % 4 == 0 and t.read.height % 4 == 0
        assert t.core_offset == (20, 20)
    assert (cover == 1).all()
    assert len({t.id for t in tiles}) == len(tiles)
    assert [t.id for t in plan_tiles(GRID, 100, 20, 4)] == [t.id for t in tiles]


def test_tiles_that_miss_the_aoi_are_skipped():
    left, bottom, _, top = GRID.bounds
    aoi = box(left, bottom, left + 30, top)  # first 60 columns only
    tiles = plan_tiles(GRID, 100, halo=20, align=4, aoi=aoi)
    assert {t.col for t in tiles} == {0}


def _inside(inner, outer):
    return (
        inner.col_off >= outer.col_off
        and inner.row_off >= outer.row_off
        and inner.col_off + inner.width <= outer.col_off + outer.width
        and inner.row_off + inner.height <= outer.row_off + outer.height
    )


@pytest.mark.parametrize("side", [1, 2, 3])
def test_groups_cover_each_tile_once_and_read_exactly_their_tiles(side):
    tiles = plan_tiles(GRID, 64, halo=20, align=4)  # 6 x 4 tiles, the last ones cut
    groups = group_tiles(tiles, side)
    emitted = [i for g in groups for i in sorted(g.emit)]
    assert sorted(emitted) == sorted(t.id for t in tiles)
    for g in groups:
        assert {t.id for t in g.tiles} == g.emit
        assert all(_inside(t.read, g.read) for t in g.tiles)
        # the window is the tiles' read windows and nothing more, on the alignment lattice
        assert g.read.width * g.read.height <= sum(t.read.width * t.read.height for t in g.tiles)
        assert g.read.col_off % 4 == 0 and g.read.row_off % 4 == 0
        assert g.read.width % 4 == 0 and g.read.height % 4 == 0
        rows, cols = {t.row for t in g.tiles}, {t.col for t in g.tiles}
        assert len(g.tiles) == len(rows) * len(cols) <= side * side
    assert max(len(g.tiles) for g in groups) == side * side


def test_a_tiles_group_does_not_depend_on_the_tiles_left_to_do():
    tiles = plan_tiles(GRID, 64, halo=20, align=4)
    whole = {t.id: g for g in group_tiles(tiles, 2) for t in g.tiles}
    todo = tiles[5:9] + tiles[15:16]  # a resumed job: some tiles are finished
    partial = group_tiles(tiles, 2, todo)
    assert sorted(i for g in partial for i in g.emit) == sorted(t.id for t in todo)
    for g in partial:
        assert g.emit <= {t.id for t in todo}
        assert all(whole[t.id].tiles == g.tiles and whole[t.id].read == g.read for t in g.tiles)


def test_a_block_with_a_tile_outside_the_aoi_is_split_into_single_tiles():
    left, _, _, top = GRID.bounds
    # 64 px tiles of 0.5 m: the AOI touches tiles (0, 0) and (1, 1) of the first block only
    aoi = box(left + 2, top - 30, left + 30, top - 2).union(
        box(left + 34, top - 62, left + 62, top - 34)
    )
    tiles = plan_tiles(GRID, 64, halo=20, align=4, aoi=aoi)
    assert {(t.row, t.col) for t in tiles} == {(0, 0), (1, 1)}
    groups = group_tiles(tiles, 2)
    assert [[(t.row, t.col) for t in g.tiles] for g in groups] == [[(0, 0)], [(1, 1)]]


def test_bad_tiling_arguments():
    with pytest.raises(InputError):
        plan_tiles(GRID, 0, 20, 4)
    with pytest.raises(InputError):
        plan_tiles(GRID, 100, 10, 4)


def test_upsampling_passes_through_cells_and_is_linear_between():
    heat = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 5, 6)
    out = upsample_heatmap(heat, stride=4, offset=3, rows=range(3, 20), cols=range(3, 24))
    torch.testing.assert_close(out[:, ::4, ::4], heat)
    torch.testing.assert_close(out[:, 2, 0], (heat[:, 0, 0] + heat[:, 1, 0]) / 2)


@pytest.mark.parametrize("stride,offset", [(4, 3), (16, 23), (8, 0), (32, 15)])
def test_upsampling_a_window_of_a_large_heatmap_is_the_formula(stride, offset):
    """Pixels anywhere in a heatmap's extent (a tile's part of its group's heatmap, its first
    and last cells, beyond the outermost cells) take the two-cell formula of the docstring;
    only the cells the pixels fall in are used."""
    g = torch.Generator().manual_seed(stride)
    heat = torch.rand((2, 40, 37), generator=g, dtype=torch.float32)

    def formula(p: int, n: int) -> tuple[int, int, float]:
        u = (p - offset) / stride
        i0 = min(max(int(np.floor(u)), 0), n - 1)
        return i0, min(i0 + 1, n - 1), min(max(u - i0, 0.0), 1.0)

    h, w = heat.shape[1:]
    extent = (offset + (h - 1) * stride, offset + (w - 1) * stride)
    for r0, c0 in [(0, 0), (extent[0] // 3, extent[1] // 2), (extent[0] - 20, extent[1] - 9)]:
        rows, cols = range(r0, r0 + 45), range(c0, c0 + 38)
        out = upsample_heatmap(heat, stride, offset, rows, cols).double()
        want = torch.empty_like(out)
        for i, r in enumerate(rows):
            a0, a1, wa = formula(r, h)
            for j, c in enumerate(cols):
                b0, b1, wb = formula(c, w)
                hd = heat.double()
                want[:, i, j] = (1 - wa) * ((1 - wb) * hd[:, a0, b0] + wb * hd[:, a0, b1]) + wa * (
                    (1 - wb) * hd[:, a1, b0] + wb * hd[:, a1, b1]
                )
        torch.testing.assert_close(out, want, rtol=0, atol=1e-6)
    # a window in the middle reads none of the outermost cells: NaN there changes nothing
    far = heat.clone()
    far[:, [0, -1], :] = far[:, :, [0, -1]] = float("nan")
    rows, cols = (
        range(extent[0] // 3, extent[0] // 3 + 45),
        range(extent[1] // 2, extent[1] // 2 + 38),
    )
    torch.testing.assert_close(
        upsample_heatmap(far, stride, offset, rows, cols),
        upsample_heatmap(heat, stride, offset, rows, cols),
        rtol=0,
        atol=0,
    )
    assert upsample_heatmap(heat, stride, offset, range(5, 5), cols).shape == (2, 0, len(cols))


SMALL = {k: v for k, v in SMALL_ARCH_ARGS.items() if k != "patch"}


@pytest.fixture(scope="module", params=["patch", *SMALL])
def checkpoint(request, model_dir, tmp_path_factory):
    """The trained patch classifier, and every other registry architecture with random
    weights (exactness does not depend on training)."""
    if request.param == "patch":
        return model_dir
    from models import build, save_checkpoint

    torch.manual_seed(0)
    model = build(request.param, **SMALL[request.param]).eval()
    with torch.no_grad():  # weights that make the output vary (FCN's skips start at zero)
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0, 1.5 / p[0].numel() ** 0.5)
            elif name.endswith("weight"):  # BatchNorm scale
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0, 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    card = rgb_card(request.param, SMALL[request.param], model, mean=120.0, std=50.0)
    path = tmp_path_factory.mktemp(request.param) / "model"
    save_checkpoint(model, path, card)
    return path


def test_registry_is_covered():
    from models import ARCHITECTURES

    assert set(ARCHITECTURES) == {"patch", *SMALL}


@pytest.mark.parametrize("tile_size", [64, 100, 256])
def test_tiled_inference_equals_whole_image(checkpoint, survey_scene, tile_size):
    predictor = TilePredictor(checkpoint, device="cpu")
    card = predictor.card
    scenes = open_scenes([str(survey_scene.scene)], 3)
    grid = GeoBox(300, 260, survey_scene.grid.transform, survey_scene.grid.crs)
    # reference: the whole grid plus the halo, in one pass
    h, a = card.halo, card.align
    whole_win = Window(
        -h, -h, -(-(grid.width + 2 * h) // a) * a, -(-(grid.height + 2 * h) // a) * a
    )
    pixels, valid = read_window(scenes, grid, whole_win, 3)
    ref = predictor.probabilities(
        pixels, valid, range(h, h + grid.height), range(h, h + grid.width)
    )
    ref_q = torch.round(ref[1:] * 254).to(torch.uint8).numpy()
    out = np.zeros((1, grid.height, grid.width), np.uint8)
    written = np.zeros(grid.shape, int)
    probs = np.zeros((grid.height, grid.width), np.float32)
    for tile in plan_tiles(grid, tile_size, card.halo, card.align):
        item = read_tile(tile, scenes, grid, 3, None)
        res = predictor.predict(item)
        r, c, th, tw = tile.core.row_off, tile.core.col_off, tile.core.height, tile.core.width
        out[:, r : r + th, c : c + tw] = res.probabilities
        written[r : r + th, c : c + tw] += 1
        r0, c0 = tile.core_offset
        probs[r : r + th, c : c + tw] = predictor.probabilities(
            item.pixels, item.valid, range(r0, r0 + th), range(c0, c0 + tw)
        )[1].numpy()
    np.testing.assert_allclose(probs, ref[1].numpy(), atol=1e-4)
    assert np.abs(out.astype(int) - ref_q.astype(int)).max() <= 1  # float rounding at .5
    assert (written == 1).all()
    assert probs.std() > 1e-3  # a constant output would pass trivially
