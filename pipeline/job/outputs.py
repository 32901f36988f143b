"""The job's outputs for people and for QGIS: the detections' style, the quicklook and
``report.html``. The formats live in :mod:`pipeline.geo` and :mod:`pipeline.report`; this module
fills them with a job's data."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import rasterio
from pyproj import CRS

from ..geo import CONFIDENCE_CATEGORIES, detections_qml, grid_offset
from ..report import Overlay, SiteTable, quicklook, site_chips, write_report
from ..report.sampling import Samples, picture_window, sample_lattice
from .detections import CONFIDENCE_LEVELS
from .plan import JobPlan
from .tiledata import PICTURE_TAG, PictureLattice

__all__ = [
    "DETECTIONS_STYLE",
    "MAX_CHIPS",
    "REPORT_HTML",
    "aoi_title",
    "detections_style",
    "picture_lattice",
    "report_chips",
    "write_job_report",
    "write_quicklook",
]

DETECTIONS_STYLE = "detections.qml"
REPORT_HTML = "report.html"
#: sites beyond this rank are listed in the report without an image chip.
MAX_CHIPS = 200

_AOI_COLOUR = (0, 220, 255)
_COLOURS = {c.value: c.colour for c in CONFIDENCE_CATEGORIES}


def detections_style(plan: JobPlan) -> str:
    """The detections' QGIS style, its legend naming the job's confidence thresholds."""
    r = plan.request
    bounds = {
        "high": f"score ≥ {r.confidence_high:g}",
        "medium": f"{r.confidence_medium:g} ≤ score < {r.confidence_high:g}",
        "low": f"score < {r.confidence_medium:g}",
    }
    categories = [
        type(c)(c.value, c.colour, f"{c.value} ({bounds[c.value]})") for c in CONFIDENCE_CATEGORIES
    ]
    return detections_qml("confidence", categories, label_field="rank")


def aoi_title(plan: JobPlan) -> str:
    """The AOI as people name it: its features' names (and codes), else the file's name."""
    units = plan.units
    names = [
        f"{n} ({c})" if c else str(n)
        for n, c in zip(units["name"], units["code"], strict=True)
        if n is not None
    ]
    if not names:
        return Path(plan.request.aoi).stem
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _subtitle(plan: JobPlan, count: int) -> str:
    date = plan.request.survey_date
    when = f"survey date {date.isoformat()}" if date else "no survey date"
    return f"{when} · {count} site{'s' if count != 1 else ''} · model {plan.card.model_id}"


def _scene_frame(plan: JobPlan, frame: gpd.GeoDataFrame) -> tuple[str, gpd.GeoDataFrame]:
    scene = plan.scenes[0]
    return scene.path, frame.to_crs(CRS.from_wkt(scene.crs))


#: the quicklook's longest side, pixels
QUICKLOOK_SIZE = 1200


def _quicklook_bounds(plan: JobPlan, aoi: gpd.GeoSeries) -> tuple[float, float, float, float]:
    """The AOI's part of the newest scene with a margin: a municipality of a province-wide
    scene is read as a window, not the whole scene."""
    left, bottom, right, top = aoi.total_bounds
    margin = 0.05 * max(right - left, top - bottom)
    s_left, s_bottom, s_right, s_top = plan.scenes[0].bounds
    return (
        max(left - margin, s_left),
        max(bottom - margin, s_bottom),
        min(right + margin, s_right),
        min(top + margin, s_top),
    )


def picture_lattice(plan: JobPlan) -> PictureLattice | None:
    """The quicklook's samples for the job's tiles to take while they have the scene's pixels
    in memory (its picture then reads only what no tile covers: the margin, tiles outside the
    AOI), or None when the picture is read from the scene alone: several scenes (the tiles
    see their mosaic), a scene not on the grid's pixel lattice, not 8-bit RGB (or with more
    bands and a nodata value: its tiles' validity is that of every band), with overviews, or a
    picture sampled no finer than 4 pixels.
    """
    if len(plan.scenes) != 1:  # tiles see a mosaic of the scenes, the picture the newest
        return None
    scene = plan.scenes[0]
    offset = grid_offset(scene, plan.grid)
    if offset is None or scene.dtype != "uint8" or scene.count < 3 or len(plan.card.bands) < 3:
        return None
    if scene.count > 3 and scene.nodata is not None:  # a tile's validity looks at every band
        return None
    aoi = gpd.GeoSeries([plan.aoi], crs=plan.grid.crs).to_crs(CRS.from_wkt(scene.crs))
    with rasterio.open(scene.path) as src:
        window, shape = picture_window(src, _quicklook_bounds(plan, aoi), QUICKLOOK_SIZE)
        lattice = sample_lattice(src, window, shape)
    if lattice is None:
        return None
    key = hashlib.sha256(repr((scene.path, lattice)).encode()).hexdigest()[:12]
    return PictureLattice(lattice.shifted(*offset), key)


def write_quicklook(
    plan: JobPlan,
    frame: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    tags: Mapping[str, dict[str, str] | None] | None = None,
) -> Path:
    """The newest scene, decimated, with the AOI and the sites outlined by confidence and
    labelled with their rank; title (AOI, date), legend and scale bar. The samples the tiles
    took (:func:`picture_lattice`), found in their ``tags`` (``tile_metadata`` of each tile),
    are not read again."""
    scene, sites = _scene_frame(plan, frame)
    aoi = gpd.GeoSeries([plan.aoi], crs=plan.grid.crs).to_crs(sites.crs)
    known: list[Samples] = []
    picture = picture_lattice(plan) if tags is not None else None
    if picture is not None and tags is not None:
        for tile in plan.tiles:
            got = picture.known((tags.get(tile.id) or {}).get(PICTURE_TAG))
            if got is not None:
                known.append(got)
    layers = [Overlay(list(aoi), _AOI_COLOUR, "AOI")]
    for level in CONFIDENCE_LEVELS:
        part = sites[sites["confidence"] == level]
        layers.append(
            Overlay(
                list(part.geometry),
                _COLOURS[level],
                f"{level} confidence",
                [str(r) for r in part["rank"]],
            )
        )
    return quicklook(
        scene,
        path,
        layers,
        max_size=QUICKLOOK_SIZE,
        title=aoi_title(plan),
        subtitle=_subtitle(plan, len(frame)),
        bounds=_quicklook_bounds(plan, aoi),
        known=known,
    )


def report_chips(plan: JobPlan, frame: gpd.GeoDataFrame) -> list[bytes | None]:
    """The report's picture of each of the first ``MAX_CHIPS`` sites of ``frame`` (the job's
    detections): a PNG chip of the newest scene with the site outlined in its confidence's
    colour. GDAL reads and PNG encoding release the GIL: this can run in a thread beside the
    quicklook (see ``run.finish_outputs``)."""
    scene, sites = _scene_frame(plan, frame)
    shown = sites.iloc[:MAX_CHIPS]
    colours = [_COLOURS.get(c, (160, 160, 160)) for c in shown["confidence"]]
    return list(site_chips(scene, list(shown.geometry), colours))


def write_job_report(
    plan: JobPlan,
    stage: str | os.PathLike[str],
    frame: gpd.GeoDataFrame,
    quicklook_png: str | os.PathLike[str],
    execution: dict[str, Any] | None = None,
    chips: list[bytes | None] | None = None,
) -> Path:
    """``report.html`` in ``stage``: summary (with the execution's figures: ``execution``,
    else ``run.json``'s when it is there), the quicklook and the sites by rank, each with a
    chip of the newest scene (``chips``: :func:`report_chips` of ``frame``, made here if
    None)."""
    folder = Path(stage)
    r = plan.request
    summary = [
        ("Area of interest", aoi_title(plan)),
        ("Survey date", r.survey_date.isoformat() if r.survey_date else "none"),
        ("Sites", str(len(frame))),
        (
            "By confidence",
            ", ".join(
                f"{(frame['confidence'] == lvl).sum() if len(frame) else 0} {lvl}"
                for lvl in CONFIDENCE_LEVELS
            ),
        ),
        ("Total site area", f"{frame['area_m2'].sum() if len(frame) else 0:,.0f} m²"),
        ("Model", f"{plan.card.model_id} ({plan.card.arch})"),
        ("Scenes", ", ".join(Path(s.path).name for s in plan.scenes)),
        ("Output grid", f"{plan.grid.crs.to_string()}, {plan.grid.resolution:g} m pixels"),
        ("Detection threshold", f"{r.threshold:g}"),
    ]
    run_json = folder / "run.json"
    if execution is None and run_json.exists():
        execution = json.loads(run_json.read_text())["execution"]
    if execution is not None:
        ex = execution
        summary.append(
            (
                "Processing",
                f"{ex['tiles']} tiles, {ex['pixels'] / 1e6:.1f} Mpx in {ex['seconds']:.1f} s "
                f"({ex['executor']}, {ex['device']})",
            )
        )
    if chips is None:
        chips = report_chips(plan, frame)
    wgs = frame.to_crs(4326).geometry.representative_point() if len(frame) else []
    rows = [
        [
            str(row["rank"]),
            str(row["site_id"]),
            str(row["confidence"]),
            f"{row['score_max']:.2f}",
            f"{row['score_mean']:.2f}",
            f"{row['area_m2']:,.0f}",
            str(row["municipality"] or ""),
            f"{pt.y:.6f}, {pt.x:.6f}",
        ]
        for (_, row), pt in zip(frame.iterrows(), wgs, strict=True)
    ]
    table = SiteTable(
        [
            "rank",
            "site_id",
            "confidence",
            "score_max",
            "score_mean",
            "area m²",
            "municipality",
            "lat, lon",
        ],
        rows,
        chips,
        badges={"confidence": {k: "#{:02x}{:02x}{:02x}".format(*v) for k, v in _COLOURS.items()}},
        numeric={"rank", "score_max", "score_mean", "area m²"},
    )
    return write_report(
        folder / REPORT_HTML,
        f"Suspected landfills: {aoi_title(plan)}",
        _subtitle(plan, len(frame)),
        summary,
        [
            (
                "Quicklook: sites outlined by confidence and labelled with their rank",
                Path(quicklook_png).read_bytes(),
            )
        ],
        table,
    )
