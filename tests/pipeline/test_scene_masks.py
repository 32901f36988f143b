"""A scene's validity read on the grid's lattice: GDAL's dataset mask, computed from the pixels
read where the mask is made of nodata values alone (no second read), GDAL's own otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

import pipeline.geo.scenes as scenes
from pipeline.geo import GeoBox, open_scenes, read_window

WINDOWS = [
    Window(0, 0, 90, 70),
    Window(17, 23, 64, 64),  # inside
    Window(-20, -12, 64, 48),  # over the top-left corner
    Window(80, 70, 64, 64),  # over the bottom-right corner
]


def _scene(path, dtype, nodata, count=3, internal_mask=False, **creation):  # type: ignore[no-untyped-def]
    """A tiled GeoTIFF written by GDAL with runs of ``nodata`` in single bands and pixels
    where every band holds it."""
    rng = np.random.default_rng(7)
    h, w = 110, 120
    info = np.iinfo(dtype)
    pixels = rng.integers(info.min, min(info.max, 3000), (count, h, w), endpoint=True)
    pixels = pixels.astype(dtype)
    for b in range(count):
        pixels[b, 10 + 7 * b : 30 + 7 * b, 5:60] = nodata
        pixels[b, 60:80, 70:110] = nodata
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=count, dtype=dtype, nodata=nodata,
        crs="EPSG:32632", transform=Affine(1, 0, 500000, 0, -1, 5000000), tiled=True,
        blockxsize=32, blockysize=32, compress="deflate", **creation,
    ) as dst:  # fmt: skip
        dst.write(pixels)
        if internal_mask:
            m = np.full((h, w), 255, np.uint8)
            m[40:50, :] = 0
            dst.write_mask(m)
    return path


def _grid(path):  # type: ignore[no-untyped-def]
    with rasterio.open(path) as src:
        return GeoBox(src.width, src.height, src.transform, CRS.from_wkt(src.crs.to_wkt()))


def _gdal_mask(path, window: Window) -> np.ndarray:  # type: ignore[no-untyped-def]
    """GDAL's dataset mask of ``window``, False outside the raster."""
    with rasterio.open(path) as src:
        full = np.zeros((src.height + 400, src.width + 400), bool)
        full[200 : 200 + src.height, 200 : 200 + src.width] = src.dataset_mask() > 0
    r, c = int(window.row_off) + 200, int(window.col_off) + 200
    return full[r : r + int(window.height), c : c + int(window.width)]


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [("uint8", 0), ("uint8", 255), ("uint16", 0), ("int16", -1)],
)
@pytest.mark.parametrize("window", WINDOWS)
def test_nodata_masks_are_computed_from_the_pixels_as_gdal_computes_them(
    tmp_path, dtype, nodata, window, monkeypatch
):
    path = _scene(tmp_path / "s.tif", dtype, nodata)
    want = _gdal_mask(path, window)
    assert (~want).any() or int(window.col_off) > 0, "the window holds nodata pixels"
    infos = open_scenes([str(path)], 3)

    def no_second_read(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the mask was read from GDAL again")

    monkeypatch.setattr(rasterio.io.DatasetReader, "dataset_mask", no_second_read)
    _, valid = read_window(infos, _grid(path), window, 3, dtype=str(np.dtype(dtype)))
    assert np.array_equal(valid, want)
    assert valid.any()


def test_other_masks_are_gdal_s_own(tmp_path):
    path = _scene(tmp_path / "s.tif", "uint8", 0, internal_mask=True)
    with rasterio.open(path) as src:
        assert scenes._integer_nodata(src, [1, 2, 3]) is None
    infos = open_scenes([str(path)], 3)
    for window in WINDOWS:
        _, valid = read_window(infos, _grid(path), window, 3)
        assert np.array_equal(valid, _gdal_mask(path, window))


def _tif(path, dtype, nodata, count=3):  # type: ignore[no-untyped-def]
    with rasterio.open(
        path, "w", driver="GTiff", width=8, height=8, count=count, dtype=dtype, nodata=nodata,
        crs="EPSG:32632", transform=Affine(1, 0, 500000, 0, -1, 5000000),
    ) as dst:  # fmt: skip
        dst.write(np.ones((count, 8, 8), dtype))
    return rasterio.open(path)


def test_masks_the_pixels_cannot_tell_are_left_to_gdal(tmp_path):
    # the dataset's mask is made of all its bands: reading fewer says nothing of it
    four = _scene(tmp_path / "four.tif", "uint8", 0, count=4, photometric="minisblack")
    with rasterio.open(four) as src:
        assert scenes._integer_nodata(src, [1, 2, 3, 4], "uint8") == [0.0] * 4
        assert scenes._integer_nodata(src, [1, 2, 3], "uint8") is None
    with _tif(tmp_path / "i.tif", "int32", 0) as src:  # float32 does not hold every int32
        assert scenes._integer_nodata(src, [1, 2, 3], "float32") is None
        assert scenes._integer_nodata(src, [1, 2, 3], "int32") == [0.0] * 3
    with _tif(tmp_path / "f.tif", "float32", 0) as src:  # NaN and rounding: GDAL's business
        assert scenes._integer_nodata(src, [1, 2, 3]) is None
    with _tif(tmp_path / "h.tif", "uint8", 0.5) as src:  # a value no pixel holds
        assert scenes._integer_nodata(src, [1, 2, 3]) is None


@pytest.mark.parametrize("photometric", [None, "minisblack"])
def test_a_four_band_scene_s_mask_is_rasterio_s_whatever_its_fourth_band_is(tmp_path, photometric):
    # GDAL writes a 4-band 8-bit GeoTIFF as RGB with an alpha band by default, and rasterio's
    # dataset mask of it is that band's alone; as four plain bands, any band's
    creation = {"photometric": photometric} if photometric else {}
    path = _scene(tmp_path / "four.tif", "uint8", 0, count=4, **creation)
    with rasterio.open(path) as src:
        alpha = src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
        assert alpha == (photometric is None)
        assert (scenes._integer_nodata(src, [1, 2, 3, 4], "uint8") is None) == alpha
    infos = open_scenes([str(path)], 4)
    for window in WINDOWS:
        _, valid = read_window(infos, _grid(path), window, 4, dtype="uint8")
        assert np.array_equal(valid, _gdal_mask(path, window))
