"""Pictures for people: a scene (or an overview of it) with polygons outlined, as PNG."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from shapely.geometry.base import BaseGeometry

__all__ = ["quicklook", "write_png"]


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an (h, w, 3) uint8 array as an 8-bit RGB PNG through GDAL (no georeferencing, so
    no ``.aux.xml`` sidecar)."""
    h, w, _ = rgb.shape
    mem = f"/vsimem/quicklook-{uuid.uuid4().hex}.tif"
    try:
        with (
            warnings.catch_warnings(category=NotGeoreferencedWarning, action="ignore"),
            rasterio.open(
                mem, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8"
            ) as dst,
        ):
            dst.write(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            rasterio.shutil.copy(mem, os.fspath(path), driver="PNG", ZLEVEL=6)
    finally:
        rasterio.shutil.delete(mem)


def quicklook(
    scene: str | os.PathLike[str],
    out: str | os.PathLike[str],
    layers: Sequence[tuple[Sequence[BaseGeometry], tuple[int, int, int]]] = (),
    max_size: int = 1600,
    width_px: int = 2,
) -> Path:
    """Write a PNG of ``scene`` read at overview resolution, with polygon outlines.

    Args:
        scene: an RGB raster.
        out: the PNG path.
        layers: ``(geometries in the scene CRS, outline colour)`` pairs, drawn in order.
        max_size: longest side of the picture in pixels; the scene is read decimated.
        width_px: outline width in picture pixels.
    """
    with rasterio.open(scene) as src:
        scale = max(1.0, max(src.width, src.height) / max_size)
        shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        data = src.read(indexes=[1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average)
        valid = src.dataset_mask(out_shape=shape) > 0
        transform = src.transform * src.transform.scale(src.width / shape[1], src.height / shape[0])
    rgb = np.where(valid[None], data, 255).astype(np.uint8).transpose(1, 2, 0).copy()
    pixel = abs(transform.a)
    for geoms, colour in layers:
        outlines = [(g.boundary.buffer(pixel * width_px / 2), 1) for g in geoms if not g.is_empty]
        if not outlines:
            continue
        edge = rasterize(outlines, out_shape=shape, transform=transform, fill=0, dtype="uint8") > 0
        rgb[edge] = colour
    write_png(out, rgb)
    return Path(out)
