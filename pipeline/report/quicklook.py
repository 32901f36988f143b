"""Pictures for people: a scene (or an overview of it) with polygons outlined and labelled, a
title, a legend and a scale bar, as PNG."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image, ImageDraw, ImageFont
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from shapely.geometry.base import BaseGeometry

__all__ = ["Overlay", "font", "outline", "quicklook", "read_rgb", "scale_bar_length", "write_png"]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Overlay:
    """Polygons drawn on a quicklook.

    Attributes:
        geometries: in the scene's CRS.
        colour: outline colour, one for all, or one per geometry.
        legend: the legend entry (none when empty).
        labels: a text per geometry written beside it (e.g. its rank), or none.
    """

    geometries: Sequence[BaseGeometry]
    colour: RGB | Sequence[RGB]
    legend: str = ""
    labels: Sequence[str] | None = None

    def colour_of(self, i: int) -> RGB:
        c = self.colour
        return c if isinstance(c[0], int) else c[i]  # type: ignore[return-value]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (the same on every machine)."""
    return ImageFont.load_default(size=size)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an (h, w, 3) uint8 array as an 8-bit RGB PNG (no georeferencing, no sidecar)."""
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(os.fspath(path), optimize=False)


def read_rgb(
    src: rasterio.io.DatasetReader, window: rasterio.windows.Window | None, shape: tuple[int, int]
) -> tuple[np.ndarray, Affine]:
    """Bands 1-3 of ``window`` (whole dataset if None) resampled to ``shape`` (h, w), nodata
    white; returns the (h, w, 3) array and the picture's geotransform.

    A scene with overviews is read from the one that fits (GDAL picks it). One without, read
    more than 4 times decimated, is sampled at twice the picture's size and averaged 2 x 2 (an
    average over every source pixel costs as much as the job's own reading, for a picture no
    one can tell from this), in strips of whole block rows decoded on all cores.
    """
    whole = rasterio.windows.Window(0, 0, src.width, src.height)
    win = window or whole
    # a boundless read goes through a VRT that reads every source pixel: only when it must
    boundless = window is not None and win.intersection(whole) != win
    factor = max(win.width / shape[1], win.height / shape[0])
    if factor > 4 and not boundless and not src.overviews(1):
        data, valid = _sample(src, win, (2 * shape[0], 2 * shape[1]))
        h, w = shape
        n = valid.reshape(h, 2, w, 2).sum(axis=(1, 3))
        total = (data.astype(np.uint32) * valid).reshape(3, h, 2, w, 2).sum(axis=(2, 4))
        data = np.where(n > 0, (total + n // 2) // np.maximum(n, 1), 255)
        valid = n > 0
    else:
        data = src.read(
            indexes=[1, 2, 3],
            window=win,
            out_shape=(3, *shape),
            resampling=Resampling.average,
            boundless=boundless,
            fill_value=255,
        )
        valid = src.dataset_mask(window=win, out_shape=shape, boundless=boundless) > 0
    base = src.window_transform(win)
    transform = base * Affine.scale(win.width / shape[1], win.height / shape[0])
    rgb = np.where(valid[None], data, 255).astype(np.uint8).transpose(1, 2, 0).copy()
    return rgb, transform


def _sample(
    src: rasterio.io.DatasetReader, win: rasterio.windows.Window, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Bands 1-3 and the validity of ``win`` sampled (nearest) at ``shape``, strip by strip:
    each strip's blocks are decoded once, whatever the size of GDAL's block cache."""
    h, w = shape
    fy = win.height / h
    step = max(1, int(src.block_shapes[0][0] * 2 / fy))  # picture rows per strip
    data = np.empty((3, h, w), np.uint8)
    valid = np.empty((h, w), bool)
    nodata = all(MaskFlags.nodata in flags for flags in src.mask_flag_enums[:3])
    every = all(flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums[:3])
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        for o0 in range(0, h, step):
            o1 = min(h, o0 + step)
            r0, r1 = round(win.row_off + o0 * fy), round(win.row_off + o1 * fy)
            strip = rasterio.windows.Window(win.col_off, r0, win.width, max(1, r1 - r0))
            part = src.read(
                indexes=[1, 2, 3], window=strip, out_shape=(3, o1 - o0, w),
                resampling=Resampling.nearest,
            )  # fmt: skip
            data[:, o0:o1] = part
            if nodata:  # GDAL's nodata mask, from the samples themselves
                valid[o0:o1] = (part != src.nodata).any(axis=0)
            elif every:
                valid[o0:o1] = True
            else:
                valid[o0:o1] = src.dataset_mask(window=strip, out_shape=(o1 - o0, w)) > 0
    return data, valid


def _rings(geom: BaseGeometry) -> list[list[tuple[float, float]]]:
    parts = getattr(geom, "geoms", [geom])
    rings: list[list[tuple[float, float]]] = []
    for part in parts:
        if part.geom_type == "Polygon":
            rings.append(list(part.exterior.coords))
            rings.extend(list(r.coords) for r in part.interiors)
        elif part.geom_type in ("LineString", "LinearRing"):
            rings.append(list(part.coords))
    return rings


def outline(
    draw: ImageDraw.ImageDraw,
    geom: BaseGeometry,
    transform: Affine,
    colour: RGB,
    width: int = 2,
) -> None:
    """Draw ``geom``'s rings (map coordinates) on a picture with geotransform ``transform``."""
    inverse = ~transform
    for ring in _rings(geom):
        pts = [inverse * xy for xy in ring]
        if len(pts) >= 2:
            draw.line(pts, fill=colour, width=width, joint="curve")


def _label(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, colour: RGB
) -> None:
    draw.text(
        xy,
        text,
        font=font(size),
        fill=(255, 255, 255),
        stroke_width=max(2, size // 7),
        stroke_fill=tuple(c // 3 for c in colour),
        anchor="lb",
    )


def scale_bar_length(metres_per_px: float, target_px: float) -> float:
    """A round length (1, 2 or 5 times a power of ten, metres) near ``target_px`` pixels."""
    want = metres_per_px * target_px
    power = 10 ** math.floor(math.log10(want))
    return max((m * power for m in (1, 2, 5) if m * power <= want), default=power)


def _metres_per_px(crs: CRS | None, transform: Affine, centre_y: float) -> float:
    pixel = abs(transform.a)
    if crs is None:
        return pixel
    if crs.is_geographic:
        return pixel * 111_320 * math.cos(math.radians(centre_y))
    return pixel * crs.linear_units_factor[1]


def _scale_bar(draw: ImageDraw.ImageDraw, x: int, y: int, metres_per_px: float, size: int) -> None:
    length = scale_bar_length(metres_per_px, 160)
    px = round(length / metres_per_px)
    h = max(6, size // 2)
    half = px // 2
    draw.rectangle((x, y - h, x + half, y), fill=(0, 0, 0))
    draw.rectangle((x + half, y - h, x + px, y), fill=(255, 255, 255), outline=(0, 0, 0))
    draw.rectangle((x, y - h, x + px, y), outline=(0, 0, 0))
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    draw.text((x + px + 8, y), text, font=font(size), fill=(0, 0, 0), anchor="lb")


def _legend(
    draw: ImageDraw.ImageDraw, x: int, y: int, entries: list[tuple[str, RGB]], size: int
) -> int:
    f = font(size)
    for text, colour in entries:
        draw.rectangle((x, y - size + 2, x + size * 2, y - 2), outline=colour, width=3)
        draw.text((x + size * 2 + 6, y), text, font=f, fill=(0, 0, 0), anchor="lb")
        x += size * 3 + round(draw.textlength(text, font=f)) + 18
    return x


def quicklook(
    scene: str | os.PathLike[str],
    out: str | os.PathLike[str],
    layers: Sequence[Overlay | tuple[Sequence[BaseGeometry], RGB]] = (),
    max_size: int = 1600,
    width_px: int = 2,
    title: str = "",
    subtitle: str = "",
    bounds: tuple[float, float, float, float] | None = None,
) -> Path:
    """Write a PNG of ``scene`` (or of ``bounds`` of it) read at overview resolution, with
    polygons outlined.

    The picture has a title strip (``title``, ``subtitle``) above the scene and a strip below
    with the legend of the overlays that have one and a scale bar. Labels (e.g. ranks) are
    written beside each polygon's top-right corner, white with a dark halo.

    Args:
        scene: an RGB raster.
        out: the PNG path.
        layers: overlays (or ``(geometries in the scene CRS, colour)`` pairs), drawn in order.
        max_size: longest side of the scene in the picture, pixels; the scene is read decimated.
        width_px: outline width in picture pixels.
        title: the first line above the picture (e.g. the AOI's name).
        subtitle: the second line (e.g. the survey date and the number of sites).
        bounds: (left, bottom, right, top) in the scene's CRS: picture only this part (a
            municipality of a province-wide scene), read as a window; default the whole scene.
    """
    overlays = [o if isinstance(o, Overlay) else Overlay(o[0], o[1]) for o in layers]
    with rasterio.open(scene) as src:
        window = None
        if bounds is not None:
            window = (
                rasterio.windows.from_bounds(*bounds, transform=src.transform)
                .round_offsets()
                .round_lengths()
            )
        width = window.width if window is not None else src.width
        height = window.height if window is not None else src.height
        scale = max(1.0, max(width, height) / max_size)
        shape = (max(1, round(height / scale)), max(1, round(width / scale)))
        rgb, transform = read_rgb(src, window, shape)
        crs = src.crs
        centre_y = (
            (bounds[1] + bounds[3]) / 2 if bounds else (src.bounds.bottom + src.bounds.top) / 2
        )
    h, w = shape
    size = max(12, min(22, round(max(w, h) / 60)))
    head, foot = round(size * 3.4), round(size * 2.6)
    canvas = Image.new("RGB", (w, h + head + foot), (255, 255, 255))
    picture = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(picture)
    for o in overlays:
        for i, g in enumerate(o.geometries):
            if not g.is_empty:
                outline(draw, g, transform, o.colour_of(i), width_px)
    inverse = ~transform
    for o in overlays:
        for i, g in enumerate(o.geometries):
            if o.labels is None or g.is_empty:
                continue
            _, _, maxx, maxy = g.bounds
            col, row = inverse * (maxx, maxy)
            _label(draw, (col + 3, max(row, size)), o.labels[i], size, o.colour_of(i))
    canvas.paste(picture, (0, head))
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (8, round(size * 1.5)), title, font=font(round(size * 1.3)), fill=(0, 0, 0), anchor="lb"
    )
    draw.text((8, head - size // 2), subtitle, font=font(size), fill=(60, 60, 60), anchor="lb")
    base = h + head + round(foot * 0.7)
    entries = [(o.legend, o.colour_of(0)) for o in overlays if o.legend and len(o.geometries)]
    right = _legend(draw, 8, base, entries, size)
    bar_x = max(right + 16, w - 8 - 160 - 6 * size)
    _scale_bar(draw, bar_x, base, _metres_per_px(crs, transform, centre_y), size)
    # zlib level 1: a tenth of the default's time for a picture of imagery, a little larger
    canvas.save(os.fspath(out), optimize=False, compress_level=1)
    return Path(out)
