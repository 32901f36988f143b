"""Pictures for people: a scene (or an overview of it) with polygons outlined and labelled, a
title, a legend and a scale bar, as PNG."""

from __future__ import annotations

import functools
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
from shapely.geometry.base import BaseGeometry

from .sampling import Samples, picture_window, read_rgb

__all__ = ["Overlay", "font", "outline", "quicklook", "scale_bar_length", "write_png"]

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


@functools.lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (the same on every machine)."""
    return ImageFont.load_default(size=size)


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an (h, w, 3) uint8 array as an 8-bit RGB PNG (no georeferencing, no sidecar)."""
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(os.fspath(path), optimize=False)


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
    inv = ~transform
    for ring in _rings(geom):
        if len(ring) < 2:
            continue
        xy = np.asarray(ring, dtype=float)[:, :2]
        cols = inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c
        rows = inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f
        draw.line(
            list(zip(cols.tolist(), rows.tolist(), strict=True)),
            fill=colour,
            width=width,
            joint="curve",
        )


def _label(
    picture: Image.Image, xy: tuple[float, float], text: str, size: int, colour: RGB
) -> None:
    """``text`` with its left end of baseline at ``xy``: white on a halo of ``colour``, darkened.

    Labels are made of a few characters (ranks: digits) drawn on hundreds of sites: each
    character's halo and glyph are rendered once (:func:`_glyph`) and stamped where the
    line's layout puts it, the halos of all first (a halo never covers a neighbour's glyph).
    """
    f = font(size)
    stroke = max(2, size // 7)
    x, y = xy
    stamps = []
    for i, ch in enumerate(text):
        dx = round(x + (f.getlength(text[:i]) if i else 0.0))
        stamps.append((dx, round(y), _glyph(ch, size, stroke)))
    halo = tuple(c // 3 for c in colour)
    for dx, dy, (left, top, halo_mask, _) in stamps:
        picture.paste(halo, _box(dx + left, dy + top, halo_mask), halo_mask)
    for dx, dy, (left, top, _, glyph_mask) in stamps:
        picture.paste((255, 255, 255), _box(dx + left, dy + top, glyph_mask), glyph_mask)


def _box(x: int, y: int, mask: Image.Image) -> tuple[int, int, int, int]:
    return x, y, x + mask.width, y + mask.height


@functools.lru_cache(maxsize=512)
def _glyph(ch: str, size: int, stroke: int) -> tuple[int, int, Image.Image, Image.Image]:
    """One character's masks, anchored at its left end of baseline: ``(left, top, halo,
    glyph)``, the halo the glyph widened by ``stroke`` pixels, both as large as the halo's box
    whose top-left corner is at ``(left, top)`` from the anchor."""
    f = font(size)
    left, top, right, bottom = f.getbbox(ch, stroke_width=stroke, anchor="lb")
    w, h = max(1, int(right - left)), max(1, int(bottom - top))
    masks = []
    for width in (stroke, 0):
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).text(
            (-left, -top), ch, font=f, fill=255, stroke_width=width, stroke_fill=255, anchor="lb"
        )
        masks.append(mask)
    return int(left), int(top), masks[0], masks[1]


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
    known: list[Samples] | None = None,
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
        known: samples of the picture's lattice already taken (see :func:`read_rgb`).
    """
    overlays = [o if isinstance(o, Overlay) else Overlay(o[0], o[1]) for o in layers]
    with rasterio.open(scene) as src:
        window, shape = picture_window(src, bounds, max_size)
        rgb, transform = read_rgb(src, window, shape, known)
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
            col, row = inverse @ (maxx, maxy)
            _label(picture, (col + 3, max(row, size)), o.labels[i], size, o.colour_of(i))
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
