"""``report.html``: one self-contained page (no file beside it, no network) for a job or a survey:
a summary, pictures, and a table of sites with an image chip each."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw
from rasterio.windows import from_bounds
from shapely.geometry.base import BaseGeometry

from .quicklook import RGB, outline
from .sampling import read_rgb

__all__ = ["SiteTable", "data_uri", "site_chips", "write_report"]

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2em 1.5em; }
dl.summary dt { color: #666; } dl.summary dd { margin: 0; }
img.picture { max-width: 100%; border: 1px solid #ccc; }
table.sites { border-collapse: collapse; width: 100%; }
table.sites th, table.sites td { border-bottom: 1px solid #ddd; padding: .35em .6em;
       text-align: left; vertical-align: middle; }
table.sites th { background: #f4f4f4; position: sticky; top: 0; }
table.sites td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sites img { width: 128px; height: 128px; display: block; }
.badge { padding: .1em .5em; border-radius: .8em; color: #111; font-weight: 600; font-size: .9em; }
"""


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, so that the page carries its pictures."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(rgb: np.ndarray | Image.Image) -> bytes:
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb, "RGB")
    buffer = io.BytesIO()
    # zlib level 1: a fifth of the default's time for a chip of imagery, a little larger
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def site_chips(
    scene: str | os.PathLike[str],
    geometries: Sequence[BaseGeometry],
    colours: Sequence[RGB] | None = None,
    size: int = 128,
    margin: float = 0.5,
    min_side: float = 60.0,
) -> list[bytes]:
    """PNG chips of ``scene`` around each geometry (in the scene's CRS), outline drawn.

    Each chip is square: the geometry's larger side plus ``margin`` of it on every side (at
    least ``min_side`` scene units), read resampled to ``size`` pixels; outside the scene it is
    white.
    """
    chips: list[bytes] = []
    with rasterio.open(scene) as src:
        for i, geom in enumerate(geometries):
            minx, miny, maxx, maxy = geom.bounds
            side = max(maxx - minx, maxy - miny, 1e-9) * (1 + 2 * margin)
            side = max(side, min_side * abs(src.transform.a))
            cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
            half = side / 2
            win = from_bounds(cx - half, cy - half, cx + half, cy + half, src.transform)
            rgb, transform = read_rgb(src, win, (size, size))
            image = Image.fromarray(rgb, "RGB")
            colour = colours[i] if colours is not None else (230, 0, 38)
            outline(ImageDraw.Draw(image), geom, transform, colour, 2)
            chips.append(_png(image))
    return chips


@dataclass
class SiteTable:
    """The table of sites of a report.

    Attributes:
        columns: column headers.
        rows: one row of cell texts per site, in the order shown.
        chips: a PNG per row (or none), shown in the first column.
        badges: for a column name, the colour of each value's badge (e.g. confidence).
        numeric: columns aligned right.
    """

    columns: list[str]
    rows: list[list[str]]
    chips: list[bytes | None] = field(default_factory=list)
    badges: dict[str, dict[str, str]] = field(default_factory=dict)
    numeric: set[str] = field(default_factory=set)

    def to_html(self) -> str:
        e = html.escape
        head = "".join(f"<th>{e(c)}</th>" for c in ["", *self.columns])
        body: list[str] = []
        for i, row in enumerate(self.rows):
            chip = self.chips[i] if i < len(self.chips) else None
            cells = [f'<td><img alt="site" src="{data_uri(chip)}"></td>' if chip else "<td></td>"]
            for column, text in zip(self.columns, row, strict=True):
                colour = self.badges.get(column, {}).get(text)
                inner = (
                    f'<span class="badge" style="background:{e(colour)}">{e(text)}</span>'
                    if colour
                    else e(text)
                )
                cls = ' class="num"' if column in self.numeric else ""
                cells.append(f"<td{cls}>{inner}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return (
            f'<table class="sites"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{chr(10).join(body)}\n</tbody></table>"
        )


def write_report(
    path: str | os.PathLike[str],
    title: str,
    subtitle: str,
    summary: Sequence[tuple[str, str]],
    pictures: Sequence[tuple[str, bytes]],
    table: SiteTable,
    table_title: str = "Sites by rank",
) -> Path:
    """Write one self-contained HTML page: title, summary, pictures, table.

    Args:
        path: the page.
        title: its heading.
        subtitle: a line under the heading.
        summary: (name, value) pairs shown as a list.
        pictures: (caption, PNG bytes), embedded as data URIs.
        table: the sites.
        table_title: the table's heading.
    """
    e = html.escape
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in summary)
    figures = "".join(
        f'<figure><img class="picture" alt="{e(caption)}" src="{data_uri(png)}">'
        f"<figcaption>{e(caption)}</figcaption></figure>"
        for caption, png in pictures
    )
    rows = table.to_html() if table.rows else "<p>No sites were detected.</p>"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>\n"
        f'<h1>{e(title)}</h1><p class="sub">{e(subtitle)}</p>\n'
        f'<h2>Summary</h2><dl class="summary">{items}</dl>\n{figures}\n'
        f"<h2>{e(table_title)}</h2>\n{rows}\n</body></html>\n"
    )
    target = Path(path)
    target.write_text(page, encoding="utf-8")
    return target
