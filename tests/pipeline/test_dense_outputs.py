"""Dense outputs of patch classifiers (issue 10 items 4 and 5): ``run --stride S`` and
``run --saliency``."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from rasterio.features import geometry_mask
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from models import build, load_checkpoint
from pipeline.errors import InputError
from pipeline.evaluation import evaluate_detections
from pipeline.geo import GeoBox, open_scenes, read_window
from pipeline.job.plan import job_card
from pipeline.job.predict import TilePredictor, read_tile
from pipeline.job.tiling import plan_tiles
from tests.helpers import SMALL_ARCH_ARGS, assert_bad_input, rgb_card, wastewatch


def test_stride_1_is_the_classifier_on_the_patch_centred_on_every_pixel(model_dir, survey_scene):
    model, card = load_checkpoint(model_dir)
    model.eval()
    predictor = TilePredictor(model_dir, device="cpu", stride=1)
    assert (predictor.card.output_stride, predictor.card.offset) == (1, card.patch_size // 2)
    scenes = open_scenes([str(survey_scene.scene)], 3)
    pixels, valid = read_window(scenes, survey_scene.grid, Window(150, 200, 160, 160), 3)
    p, half = card.patch_size, card.patch_size // 2
    inner = range(half, 160 - half)  # pixels whose centred patch lies in the window
    probs = predictor.probabilities(pixels, valid, inner, inner)
    mean = torch.tensor(card.mean)[:, None, None]
    std = torch.tensor(card.std)[:, None, None]
    x = (torch.from_numpy(pixels) - mean) / std * torch.from_numpy(valid)[None]
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(half, 160 - half, (2, 200))
    patches = torch.stack(
        [
            x[:, r - half : r - half + p, c - half : c - half + p]
            for r, c in zip(rows, cols, strict=True)
        ]
    )
    with torch.no_grad():
        ref = torch.softmax(model(patches), dim=1)
    got = probs[:, rows - half, cols - half].T
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)
    assert ref[:, 1].std() > 0.05  # the samples see sites and background


@pytest.mark.parametrize(("stride", "saliency"), [(1, False), (2, True)])
def test_tiled_equals_whole_image(model_dir, survey_scene, stride, saliency):
    model, card = load_checkpoint(model_dir)
    card = job_card(card, model, stride, saliency)
    predictor = TilePredictor(model_dir, device="cpu", stride=stride, saliency=saliency)
    scenes = open_scenes([str(survey_scene.scene)], 3)
    grid = GeoBox(300, 260, survey_scene.grid.transform, survey_scene.grid.crs)
    h, a = card.halo, card.align
    whole = Window(-h, -h, -(-(grid.width + 2 * h) // a) * a, -(-(grid.height + 2 * h) // a) * a)
    pixels, valid = read_window(scenes, grid, whole, 3)
    rows, cols = range(h, h + grid.height), range(h, h + grid.width)
    ref = predictor.probabilities(pixels, valid, rows, cols)[1].numpy()
    ref_cam = (
        predictor.saliency(pixels, valid)[h : h + grid.height, h : h + grid.width]
        if saliency
        else None
    )
    probs = np.full(grid.shape, np.nan, np.float32)
    cams = np.full(grid.shape, np.nan, np.float32)
    tiles = plan_tiles(grid, 100, card.halo, card.align)
    for tile in tiles:
        item = read_tile(tile, scenes, grid, 3, None)
        r, c, th, tw = tile.core.row_off, tile.core.col_off, tile.core.height, tile.core.width
        r0, c0 = tile.core_offset
        probs[r : r + th, c : c + tw] = predictor.probabilities(
            item.pixels, item.valid, range(r0, r0 + th), range(c0, c0 + tw)
        )[1].numpy()
        if saliency:
            cams[r : r + th, c : c + tw] = predictor.saliency(item.pixels, item.valid)[
                r0 : r0 + th, c0 : c0 + tw
            ].numpy()
            result = predictor.predict(item)
            assert result.saliency is not None and result.saliency.shape == (th, tw)
    assert len(tiles) > 4
    np.testing.assert_allclose(probs, ref, atol=1e-4)
    assert probs.std() > 1e-3
    if ref_cam is not None:
        np.testing.assert_allclose(cams, ref_cam.numpy(), atol=1e-4)
        assert ref_cam.std() > 1e-3


def test_stride_and_saliency_are_checked_while_planning(model_dir):
    model, card = load_checkpoint(model_dir)
    with pytest.raises(
        InputError,
        match=r"--stride 3 does not divide the output stride 4 of m: choose one of 1, 2, 4",
    ):
        job_card(card, model, 3, source="m")
    args = SMALL_ARCH_ARGS["unet"]
    unet = build("unet", **args).eval()
    with pytest.raises(InputError, match="--saliency need a patch classifier"):
        job_card(rgb_card("unet", args, unet), unet, None, saliency=True)
    assert job_card(card, model) == card
    with_cam = job_card(card, model, None, saliency=True)
    assert with_cam.halo >= card.patch_size and with_cam.halo % card.align == 0


def _run(survey_scene, model_dir, out, *extra: str):
    return wastewatch(
        "run",
        "--aoi",
        str(survey_scene.aoi),
        "--scenes",
        str(survey_scene.scene),
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--no-prefect",
        "--executor",
        "local",
        "--tile-size",
        "256",
        *extra,
    )


def test_bad_stride_is_one_line(survey_scene, model_dir, tmp_path):
    proc = _run(survey_scene, model_dir, tmp_path / "out", "--stride", "3")
    assert_bad_input(proc, "--stride 3", "choose one of 1, 2, 4")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_every_divisor_puts_the_sites_on_the_planted_ones(
    survey_scene, model_dir, tmp_path, stride
):
    out = tmp_path / "out"
    extra = ("--saliency",) if stride == 4 else ()
    proc = _run(survey_scene, model_dir, out, "--stride", str(stride), *extra)
    assert proc.returncode == 0, proc.stderr
    metrics = evaluate_detections(out / "detections.geojson", survey_scene.truth)
    assert metrics["recall"] >= 0.8 and metrics["mean_iou"] >= 0.5, metrics
    run = json.loads((out / "run.json").read_text())
    assert run["parameters"]["stride"] == stride and run["heatmap"]["stride_px"] == stride
    assert run["parameters"]["saliency"] is bool(extra) and run["heatmap"]["saliency"] is bool(
        extra
    )
    assert ("saliency.tif" in proc.stdout) is bool(extra)
    if extra:
        _check_saliency(out, survey_scene)
    else:
        assert not (out / "saliency.tif").exists()


def _check_saliency(out, survey_scene) -> None:
    valid, errors, _ = cog_validate(out / "saliency.tif")
    assert valid, errors
    assert (out / "saliency.qml").read_text().startswith("<!DOCTYPE qgis")
    with rasterio.open(out / "saliency.tif") as src, rasterio.open(out / "probabilities.tif") as p:
        assert (src.crs, src.transform, src.shape) == (p.crs, p.transform, p.shape)
        assert src.nodata == 255 and src.dtypes[0] == "uint8" and src.scales == (1 / 254,)
        assert src.descriptions == ("Grad-CAM(landfill)",)
        assert "STATISTICS_MAXIMUM" in src.tags(1)  # embedded: opening writes no .aux.xml
        raw = src.read(1, masked=True)
        cam = raw.astype(np.float64) * src.scales[0]
        truth = gpd.read_file(survey_scene.truth).to_crs(src.crs)
        inside = geometry_mask(truth.geometry, raw.shape, src.transform, invert=True)
    data = ~np.ma.getmaskarray(cam)
    on, off = cam[inside & data].mean(), cam[~inside & data].mean()
    assert cam.max() <= 1 and on > 0.5 and on > 2 * off, (on, off)
