"""Scene inputs: open, check and describe GeoTIFF/COG/VRT scenes, and read windows of them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from shapely import segmentize
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shp_transform

from .errors import CRSError, InputError, InputNotFoundError, SceneReadError
from .geobox import GeoBox

__all__ = ["SceneInfo", "open_scenes", "read_window"]


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
    """

    path: str
    crs: str
    bounds: tuple[float, float, float, float]
    count: int
    dtype: str
    nodata: float | None
    resolution: tuple[float, float]
    acquired: str

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
            tags = src.tags()
            acquired = tags.get("ACQUISITION_DATE") or tags.get("TIFFTAG_DATETIME", "")[
                :10
            ].replace(":", "-")
            return SceneInfo(
                path=path,
                crs=src.crs.to_wkt(),
                bounds=tuple(src.bounds),
                count=src.count,
                dtype=src.dtypes[0],
                nodata=src.nodata,
                resolution=src.res,
                acquired=acquired,
            )
    except RasterioIOError as exc:
        first = str(exc).strip().splitlines()[0]
        raise SceneReadError(
            f"scene {path} cannot be read as a raster ({first}): give a GeoTIFF, COG or VRT"
        ) from None


def open_scenes(paths: list[str | os.PathLike[str]], bands: int) -> list[SceneInfo]:
    """Describe and check the scenes; newest acquisition first (then in the order given).

    Raises:
        InputError: no scenes, or a band count that differs from the model's.
        InputNotFoundError, SceneReadError, CRSError: per scene.
    """
    if not paths:
        raise InputError("no scenes given: pass at least one --scenes FILE")
    infos = [_describe(os.fspath(p)) for p in paths]
    for info in infos:
        if info.count < bands:
            raise InputError(
                f"scene {info.path} has {info.count} bands but the model needs "
                f"{bands}: give {bands}-band imagery"
            )
    order = sorted(
        range(len(infos)), key=lambda i: (infos[i].acquired == "", _neg(infos[i].acquired), i)
    )
    return [infos[i] for i in order]


def _neg(date: str) -> tuple[int, ...]:
    digits = [int(p) for p in date.split("-") if p.isdigit()]
    return tuple(-d for d in digits)


def read_window(
    scenes: list[SceneInfo],
    grid: GeoBox,
    window: rasterio.windows.Window,
    bands: int,
    resampling: Resampling = Resampling.bilinear,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window of the output grid from the scenes, reprojected on the fly.

    Every scene is read through a ``WarpedVRT`` onto the window's own transform; the first valid
    pixel wins, scenes being ordered newest first.

    Returns:
        ``(pixels, valid)``: pixels (bands, h, w) in the scenes' dtype promoted to float32,
        and a boolean validity mask (h, w).
    """
    h, w = int(window.height), int(window.width)
    transform = grid.window_transform(window)
    pixels = np.zeros((bands, h, w), np.float32)
    valid = np.zeros((h, w), bool)
    dst_crs = grid.crs.to_wkt()
    for scene in scenes:
        try:
            with (
                rasterio.open(scene.path) as src,
                WarpedVRT(
                    src,
                    crs=dst_crs,
                    transform=transform,
                    width=w,
                    height=h,
                    resampling=resampling,
                    src_nodata=src.nodata,
                    nodata=src.nodata,
                ) as vrt,
            ):
                data = vrt.read(indexes=list(range(1, bands + 1)), out_dtype="float32")
                mask = vrt.dataset_mask() > 0
        except RasterioIOError as exc:
            raise SceneReadError(f"scene {scene.path} failed to read: {exc}") from None
        take = mask & ~valid
        if take.any():
            pixels[:, take] = data[:, take]
            valid |= take
        if valid.all():
            break
    return pixels, valid
