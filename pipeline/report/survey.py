"""``report.html`` of a survey: the inspection list first, then counts, the region picture and
links to each municipality's job. One self-contained file (pictures embedded) that opens
offline; its bytes depend only on the survey's sites and imagery."""

from __future__ import annotations

import base64
import datetime as dt
import html
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.windows import from_bounds
from shapely.geometry import box

from .quicklook import quicklook, write_png

__all__ = ["STATUS_COLOURS", "site_chip", "write_survey_report"]

#: outline colour of each status, in pictures and in the table.
STATUS_COLOURS = {
    "new": (230, 20, 60),
    "grown": (255, 140, 0),
    "persisting": (40, 120, 255),
    "shrunk": (120, 170, 255),
    "disappeared": (150, 150, 150),
    "not_observed": (200, 200, 200),
}
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:middle}th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}
.meta{color:#666}img.chip{width:96px;height:96px;image-rendering:pixelated}
"""


def _png(rgb: np.ndarray) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chip.png"
        write_png(path, rgb)
        return base64.b64encode(path.read_bytes()).decode("ascii")


def site_chip(
    scenes: Sequence[str], geometry: object, crs: CRS, size: int = 96, margin: float = 0.6
) -> str | None:
    """A square picture of a site from the first scene that covers it, outlined; base64 PNG
    (None when no scene covers it)."""
    for path in scenes:
        with rasterio.open(path) as src:
            g = gpd.GeoSeries([geometry], crs=crs).to_crs(src.crs).iloc[0]
            x0, y0, x1, y1 = g.bounds
            half = max(x1 - x0, y1 - y0) * (0.5 + margin) + 4 * abs(src.res[0])
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            bounds = (cx - half, cy - half, cx + half, cy + half)
            if not box(*src.bounds).contains(box(*bounds)):
                continue
            win = from_bounds(*bounds, transform=src.transform)
            data = src.read(
                indexes=[1, 2, 3],
                window=win,
                out_shape=(3, size, size),
                resampling=Resampling.bilinear,
            )
            transform = src.window_transform(win) * Affine.scale(
                win.width / size, win.height / size
            )
            rgb = data.transpose(1, 2, 0).astype(np.uint8).copy()
            edge = rasterize(
                [(g.boundary.buffer(abs(transform.a) * 0.8), 1)],
                out_shape=(size, size),
                transform=transform,
                fill=0,
                dtype="uint8",
            )
            rgb[edge > 0] = (255, 230, 0)
            return _png(rgb)
    return None


def _badge(status: str) -> str:
    r, g, b = STATUS_COLOURS.get(status, (90, 90, 90))
    return f'<span class="badge" style="background:rgb({r},{g},{b})">{html.escape(status)}</span>'


def _fmt_date(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)[:10]


def _region_picture(scenes: Sequence[str], sites: gpd.GeoDataFrame) -> str | None:
    if not scenes:
        return None
    with rasterio.open(scenes[0]) as src:
        crs = src.crs
    layers = []
    for status, colour in STATUS_COLOURS.items():
        part = sites[sites["status"] == status] if len(sites) else sites
        if len(part):
            layers.append((list(part.to_crs(crs).geometry), colour))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "region.png"
        quicklook(scenes[0], out, layers, max_size=1400)
        return base64.b64encode(out.read_bytes()).decode("ascii")


def write_survey_report(
    path: Path,
    *,
    region: str,
    date: dt.date,
    sites: gpd.GeoDataFrame,
    changes: gpd.GeoDataFrame,
    municipalities: Mapping[str, str | None],
    jobs: Mapping[str, str],
    scenes: Sequence[str],
    previous: str | None,
    max_chips: int = 300,
) -> Path:
    """Write the survey's ``report.html``.

    Args:
        path: the file to write.
        region: the region's name (its folder).
        date: the survey date.
        sites: the survey's sites in inspection order (``rank``, ``status``, ...).
        changes: previous sites not found again.
        municipalities: code -> name of every municipality surveyed.
        jobs: code -> relative link of each finished job.
        scenes: the imagery, newest first (chips and the region picture come from it).
        previous: the date of the survey compared with.
        max_chips: sites beyond this rank get no picture (keeps the file small).
    """
    e = html.escape
    crs = sites.crs
    rows = []
    for i, (_, s) in enumerate(sites.iterrows()):
        chip = site_chip(scenes, s.geometry, crs) if i < max_chips else None
        img = (
            f'<img class="chip" alt="{e(s["site_id"])}" src="data:image/png;base64,{chip}">'
            if chip
            else ""
        )
        confidence = s.get("confidence") or ""
        rows.append(
            f"<tr><td class=n>{int(s['rank'])}</td><td>{e(str(s['site_id']))}</td>"
            f"<td>{e(str(s.get('municipality') or s.get('municipality_code') or ''))}</td>"
            f"<td>{_badge(str(s['status']))}</td><td>{e(str(confidence))}</td>"
            f"<td class=n>{float(s['area_m2']):,.0f}</td><td class=n>{float(s['score_max']):.2f}</td>"
            f"<td>{_fmt_date(s.get('first_seen'))}</td><td>{img}</td></tr>"
        )
    status_counts = (
        Counter(sites["status"]) + Counter(changes["status"])
        if len(changes)
        else Counter(sites["status"])
    )
    per_code: dict[str, Counter[str]] = {c: Counter() for c in municipalities}
    for _, s in sites.iterrows():
        per_code.setdefault(str(s.get("municipality_code")), Counter())[str(s["status"])] += 1
    for _, s in changes.iterrows():
        per_code.setdefault(str(s.get("municipality_code")), Counter())[str(s["status"])] += 1
    statuses = list(STATUS_COLOURS)
    muni_rows = []
    for code, name in municipalities.items():
        c = per_code.get(code, Counter())
        link = f'<a href="{e(jobs[code])}/">job</a>' if code in jobs else "no imagery"
        cells = "".join(f"<td class=n>{c.get(s, 0) or ''}</td>" for s in statuses)
        muni_rows.append(
            f"<tr><td>{e(code)}</td><td>{e(name or '')}</td>{cells}<td>{link}</td></tr>"
        )
    gone = [
        f"<tr><td>{e(str(s['site_id']))}</td><td>{_badge(str(s['status']))}</td>"
        f"<td>{e(str(s.get('municipality') or ''))}</td><td>{_fmt_date(s.get('first_seen'))}</td></tr>"
        for _, s in changes.iterrows()
    ]
    picture = _region_picture(scenes, sites)
    summary = ", ".join(f"{status_counts.get(s, 0)} {s.replace('_', ' ')}" for s in statuses)
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>wastewatch survey {e(region)} {date.isoformat()}</title>
<style>{_CSS}</style></head><body>
<h1>Survey of {e(region)}, {date.isoformat()}</h1>
<p class="meta">{len(municipalities)} municipalities, {len(sites)} sites ({summary}); compared with
{e(previous) if previous else "no earlier survey (every site is new)"}.</p>
<h2>Inspection list</h2>
<p class="meta">New and grown sites first, then by score.</p>
<table><tr><th>rank</th><th>site id</th><th>municipality</th><th>status</th><th>confidence</th>
<th>area m²</th><th>score</th><th>first seen</th><th>picture</th></tr>
{"".join(rows) or '<tr><td colspan="9">no sites</td></tr>'}</table>
<h2>Sites of the previous survey not found again</h2>
<table><tr><th>site id</th><th>status</th><th>municipality</th><th>first seen</th></tr>
{"".join(gone) or '<tr><td colspan="4">none</td></tr>'}</table>
<h2>Per municipality</h2>
<table><tr><th>code</th><th>name</th>{"".join(f"<th>{s.replace('_', ' ')}</th>" for s in statuses)}<th></th></tr>
{"".join(muni_rows)}</table>
<h2>Region</h2>
{f'<img alt="region" style="max-width:100%" src="data:image/png;base64,{picture}">' if picture else ""}
<p class="meta">Outlines: {", ".join(f'<span style="color:rgb{c}">{s.replace("_", " ")}</span>' for s, c in STATUS_COLOURS.items())}.</p>
</body></html>
"""
    path.write_text(doc, encoding="utf-8")
    return path
