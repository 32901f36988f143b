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
import rasterio

from ..geo.styles import STATUS_CATEGORIES
from .page import data_uri, site_chips
from .quicklook import quicklook

__all__ = ["STATUS_COLOURS", "write_survey_report"]

#: outline colour of each status, in pictures and in the table (as in the GIS style).
STATUS_COLOURS = {c.value: c.colour for c in STATUS_CATEGORIES}
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:middle}th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}
.meta{color:#666}img.chip{width:96px;height:96px;image-rendering:pixelated}
"""


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
    chips: list[bytes] = []
    if scenes and len(sites):
        with rasterio.open(scenes[0]) as src:
            crs = src.crs
        head = sites.iloc[:max_chips]
        chips = site_chips(
            scenes[0],
            list(head.to_crs(crs).geometry),
            [STATUS_COLOURS.get(str(v), (90, 90, 90)) for v in head["status"]],
            size=96,
        )
    rows = []
    for i, (_, s) in enumerate(sites.iterrows()):
        img = (
            f'<img class="chip" alt="{e(s["site_id"])}" src="{data_uri(chips[i])}">'
            if i < len(chips)
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
