"""Scene inputs: open, check and describe GeoTIFF/COG/VRT scenes, and read windows of them."""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS, Transformer
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from shapely import segmentize
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shp_transform

from ..errors import CRSError, InputError, InputNotFoundError, SceneReadError
from .grid import GeoBox

__all__ = ["SceneInfo", "gdal_reason", "grid_offset", "open_scenes", "read_window"]


@dataclass(frozen=True)
class SceneInfo:
    """What the planner needs of one scene.

    Attributes:
        path: the scene (a local path or any GDAL-readable URI).
        crs: WKT of the scene CRS.
        bounds: (left, bottom, right, top) in the scene CRS.
        count: bands.
        dtype: pixel type.
        nodata: nodata value, or None (then the dataset's mask, or all valid).
        resolution: (x, y) pixel size in scene CRS units.
        acquired: acquisition date (ISO) from the tags, or "" when unknown.
        alpha: the (1-based) indexes of alpha bands.
    """

    path: str
    crs: str
    bounds: tuple[float, float, float, float]
    count: int
    dtype: str
    nodata: float | None
    resolution: tuple[float, float]
    acquired: str
    alpha: tuple[int, ...] = ()

    def footprint(self, crs: CRS) -> BaseGeometry:
        """The scene's bounding box reprojected to ``crs`` (densified edges)."""
        outline = box(*self.bounds)
        outline = segmentize(outline, max(outline.length / 400, 1e-9))
        to_crs = Transformer.from_crs(CRS.from_wkt(self.crs), crs, always_xy=True).transform
        return shp_transform(to_crs, outline)


def _describe(path: str) -> SceneInfo:
    is_local = "://" not in path and not path.startswith("/vsi")
    if is_local and not Path(path).exists():
        raise InputNotFoundError(f"scene {path} does not exist: check the path")
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise CRSError(
                    f"scene {path} has no CRS: assign one with "
                    f"`rio edit-info --crs EPSG:32632 {path}`"
                )
            if src.transform.is_identity or src.transform.b != 0 or src.transform.d != 0:
                raise SceneReadError(
                    f"scene {path} has no north-up georeferencing: warp it first "
                    f"(`gdalwarp -t_srs EPSG:32632 {path} out.tif`)"
                )
            alpha = [i + 1 for i, ci in enumerate(src.colorinterp) if ci == ColorInterp.alpha]
            tags = src.tags()
            acquired = tags.get("ACQUISITION_DATE") or tags.get("TIFFTAG_DATETIME", "")[
                :10
            ].replace(":", "-")
            return SceneInfo(
                path=path,
                crs=src.crs.to_wkt(),
                bounds=tuple(src.bounds),
                count=src.count,
                alpha=tuple(alpha),
                dtype=src.dtypes[0],
                nodata=src.nodata,
                resolution=src.res,
                acquired=acquired,
            )
    except RasterioError as exc:
        raise SceneReadError(
            f"scene {path} cannot be read as a raster ({gdal_reason(exc)}): "
            "give a GeoTIFF, COG or VRT"
        ) from None


def gdal_reason(exc: BaseException) -> str:
    """The first line of what GDAL said, also when rasterio wraps it in "Read or write failed.
    See previous exception for details." (the cause is chained, not in the message)."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    for candidate in (seen, exc):
        text = str(candidate).strip()
        if text and "See previous exception" not in text:
            return text.splitlines()[0].rstrip(".")
    return type(exc).__name__


def open_scenes(paths: list[str | os.PathLike[str]], bands: int | None = None) -> list[SceneInfo]:
    """Describe and check the scenes; newest acquisition first (then in the order given).

    Raises:
        InputError: no scenes, or a band count that differs from the model's (an alpha band
            counts: the model would read it as data).
        InputNotFoundError, SceneReadError, CRSError: per scene.
    """
    if not paths:
        raise InputError("no scenes given: pass at least one --scenes FILE")
    infos = [_describe(os.fspath(p)) for p in paths]
    for info in infos:
        if bands is not None and info.count != bands:
            picks = " ".join(f"-b {i}" for i in range(1, bands + 1))
            alpha = f" (band {info.alpha[0]} is alpha)" if info.alpha else ""
            mask = f" -mask {info.alpha[0]}" if info.alpha else ""
            raise InputError(
                f"scene {info.path} has {info.count} bands{alpha} but the model reads {bands}: "
                f"give {bands}-band imagery in the model's band order "
                f"(e.g. `gdal_translate {picks}{mask} {info.path} out.tif`)"
            )
    order = sorted(
        range(len(infos)), key=lambda i: (infos[i].acquired == "", _neg(infos[i].acquired), i)
    )
    return [infos[i] for i in order]


def _neg(date: str) -> tuple[int, ...]:
    digits = [int(p) for p in date.split("-") if p.isdigit()]
    return tuple(-d for d in digits)


#: scenes kept open per thread between reads: the dataset's decoded blocks stay in GDAL's
#: cache, so the halo a tile shares with the one before is not decoded again
_OPEN = threading.local()
_KEEP_OPEN = 8


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:  # a URI, or gone (opening says so)
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _dataset(path: str) -> rasterio.io.DatasetReader:
    """``path`` opened for reading, kept open for this thread's next reads (reopened when the
    file changed)."""
    cache: OrderedDict[str, tuple[object, rasterio.io.DatasetReader]] | None = getattr(
        _OPEN, "datasets", None
    )
    if cache is None:
        cache = _OPEN.datasets = OrderedDict()
    stamp = _stamp(path)
    held = cache.pop(path, None)
    if held is not None:
        if held[0] == stamp:
            cache[path] = held
            return held[1]
        held[1].close()
    src = rasterio.open(path)
    cache[path] = (stamp, src)
    while len(cache) > _KEEP_OPEN:
        cache.popitem(last=False)[1][1].close()
    return src


def _forget(path: str) -> None:
    cache = getattr(_OPEN, "datasets", None)
    held = cache.pop(path, None) if cache is not None else None
    if held is not None:
        held[1].close()


@functools.lru_cache(maxsize=64)
def _same_crs(a: str, b: str) -> bool:
    return a == b or CRS.from_wkt(a) == CRS.from_wkt(b)


def _lattice_offset(
    src: rasterio.io.DatasetReader, scene: SceneInfo, grid: GeoBox
) -> tuple[int, int] | None:
    """(col, row) of the grid's pixel (0, 0) in the scene's pixels when the scene lies on the
    grid's pixel lattice (same CRS, same pixel size, whole-pixel offset); else None."""
    s, g = src.transform, grid.transform
    if s.b or s.d or g.b or g.d:
        return None
    tol = 1e-9 * max(abs(g.a), 1.0)
    if abs(s.a - g.a) > tol or abs(s.e - g.e) > tol:
        return None
    col, row = (g.c - s.c) / s.a, (g.f - s.f) / s.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    if not _same_crs(scene.crs, grid.crs.to_wkt()):
        return None
    return round(col), round(row)


def grid_offset(scene: SceneInfo, grid: GeoBox) -> tuple[int, int] | None:
    """(row, col) of the grid's pixel (0, 0) in the scene's pixels when the scene lies on the
    grid's pixel lattice (same CRS, same pixel size, whole-pixel offset); else None."""
    offset = _lattice_offset(_dataset(scene.path), scene, grid)
    return None if offset is None else (offset[1], offset[0])


def _read_aligned(
    src: rasterio.io.DatasetReader,
    window: Window,
    offset: tuple[int, int],
    indexes: list[int],
    dtype: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """A window of the grid read from a scene on its lattice; outside the scene: invalid."""
    h, w = int(window.height), int(window.width)
    c0, r0 = int(window.col_off) + offset[0], int(window.row_off) + offset[1]
    c1, r1 = max(c0, 0), max(r0, 0)
    c2, r2 = min(c0 + w, src.width), min(r0 + h, src.height)
    all_valid = all(flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums)
    nodata = _integer_nodata(src, indexes, dtype)
    if (c1, r1, c2, r2) == (c0, r0, c0 + w, r0 + h):  # inside the scene: read as it is
        win = Window(c0, r0, w, h)
        data = src.read(indexes=indexes, window=win, out_dtype=dtype)
        if all_valid:  # no nodata, mask or alpha: computing the mask costs a read
            return data, np.ones((h, w), bool)
        if nodata is not None:
            return data, _valid_of_nodata(data, nodata)
        return data, src.dataset_mask(window=win) > 0
    data = np.zeros((len(indexes), h, w), dtype)
    mask = np.zeros((h, w), bool)
    if c2 > c1 and r2 > r1:
        win = Window(c1, r1, c2 - c1, r2 - r1)
        rows, cols = slice(r1 - r0, r2 - r0), slice(c1 - c0, c2 - c0)
        part = src.read(indexes=indexes, window=win, out_dtype=dtype)
        data[:, rows, cols] = part
        if all_valid:
            mask[rows, cols] = True
        elif nodata is not None:
            mask[rows, cols] = _valid_of_nodata(part, nodata)
        else:
            mask[rows, cols] = src.dataset_mask(window=win) > 0
    return data, mask


def _integer_nodata(
    src: rasterio.io.DatasetReader, indexes: list[int], dtype: str = "float32"
) -> list[float] | None:
    """The bands' nodata values when the dataset's mask is made of them alone and the pixels
    read (as ``dtype``) hold them exactly: every band of an integer scene read, into a type
    that holds each value as it is, each band's mask its nodata value (no mask band, no alpha
    band). Then the mask is computed from the pixels read, the way GDAL and rasterio do
    (``dataset_mask``: valid where any band is not nodata) without reading the window a second
    time. None otherwise: rasterio's own mask of a scene with an alpha band (GDAL gives a
    4-band 8-bit GeoTIFF one by default) is that band's alone."""
    types = {np.dtype(t) for t in src.dtypes}
    if (
        len(indexes) != src.count
        or len(types) != 1
        or not np.issubdtype(next(iter(types)), np.integer)
        or not np.can_cast(next(iter(types)), np.dtype(dtype), "safe")
    ):
        return None
    if any(flags != [MaskFlags.nodata] for flags in src.mask_flag_enums):
        return None
    if ColorInterp.alpha in src.colorinterp or (
        src.count == 4 and src.colorinterp[0] == ColorInterp.red
    ):
        return None
    info = np.iinfo(next(iter(types)))
    values = [src.nodatavals[i - 1] for i in indexes]
    if any(v is None or not float(v).is_integer() or not info.min <= v <= info.max for v in values):
        return None  # a value no pixel can hold: GDAL says what it makes of it
    return [float(v) for v in values]


def _valid_of_nodata(data: np.ndarray, nodata: list[float]) -> np.ndarray:
    """Valid where any band differs from its nodata value (bands, h, w) -> (h, w)."""
    valid = data[0] != data.dtype.type(nodata[0])
    for band, value in zip(data[1:], nodata[1:], strict=True):
        valid |= band != data.dtype.type(value)
    return valid


def read_window(
    scenes: list[SceneInfo],
    grid: GeoBox,
    window: rasterio.windows.Window,
    bands: int,
    resampling: Resampling = Resampling.bilinear,
    dtype: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window of the output grid from the scenes, reprojected on the fly.

    A scene on the grid's pixel lattice (same CRS and pixel size, whole-pixel offset) is read
    as it is; any other through a ``WarpedVRT`` onto the window's own transform. The first valid
    pixel wins, scenes being ordered newest first. A pixel is valid where the dataset's mask
    says so and every band is finite (NaN and infinities in float scenes are nodata).

    Args:
        dtype: the pixels' type: float32 (the default), or another only when every scene
            has it (8-bit pixels take a quarter of the memory; the network's input is made of
            them stripe by stripe); float32 otherwise.

    Returns:
        ``(pixels, valid)``: pixels (bands, h, w) of ``dtype`` and a boolean validity mask
        (h, w).
    """
    if any(np.dtype(s.dtype) != np.dtype(dtype) for s in scenes):
        dtype = "float32"
    h, w = int(window.height), int(window.width)
    transform = grid.window_transform(window)
    pixels = np.zeros((bands, h, w), dtype)
    valid = np.zeros((h, w), bool)
    dst_crs = grid.crs.to_wkt()
    indexes = list(range(1, bands + 1))
    for scene in scenes:
        try:
            src = _dataset(scene.path)
            offset = _lattice_offset(src, scene, grid)
            if offset is not None:
                # the scene is on the grid's pixel lattice: a plain windowed read, no warp
                data, mask = _read_aligned(src, window, offset, indexes, dtype)
            else:
                with WarpedVRT(
                    src,
                    crs=dst_crs,
                    transform=transform,
                    width=w,
                    height=h,
                    resampling=resampling,
                    src_nodata=src.nodata,
                    nodata=src.nodata,
                ) as vrt:
                    data = vrt.read(indexes=indexes, out_dtype=dtype)
                    mask = vrt.dataset_mask() > 0
        except RasterioError as exc:
            _forget(scene.path)
            raise SceneReadError(
                f"scene {scene.path} failed to read ({gdal_reason(exc)}): the file is "
                "truncated or corrupt; replace it (`gdalinfo -checksum` finds bad files)"
            ) from None
        floating = np.issubdtype(np.dtype(scene.dtype), np.floating)
        if floating:
            mask &= np.isfinite(data).all(axis=0)
        if not floating and not valid.any():
            # the first scene with data: its pixels as they are (what the network sees of
            # invalid pixels is set by `valid`; integer pixels hold no NaN to carry along)
            pixels, valid = data, mask
        else:
            take = mask & ~valid
            if take.any():
                np.copyto(pixels, data, where=take[None])
                valid |= take
        if valid.all():
            break
    return pixels, valid
