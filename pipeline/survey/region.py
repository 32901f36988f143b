"""The region-wide step of a survey: merge the municipality jobs, compare with the previous
survey, and write the region's layers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from pyproj import CRS
from rasterio.errors import WindowError
from rasterio.features import geometry_mask
from rasterio.windows import Window, from_bounds

from ..geo import NODATA, geojson_precision, read_vectors, write_geojson, write_gpkg
from ..geo.styles import STATUS_CATEGORIES, detections_qml, write_qml
from ..job.detections import FIELDS
from .changes import ChangeResult, compare_surveys, inspection_order

__all__ = [
    "CHANGES_GEOJSON",
    "REGION_FIELDS",
    "JobOutput",
    "gpkg_timestamp",
    "merge_jobs",
    "observed_share",
    "previous_sites",
    "region_changes",
    "write_region_layers",
]

CHANGES_GEOJSON = "changes.geojson"
#: properties of a region's detection: a job's, plus what the comparison adds.
REGION_FIELDS = (*FIELDS, "status", "first_seen", "previous_area_m2")
CHANGE_FIELDS = (
    "site_id",
    "status",
    "first_seen",
    "area_m2",
    "score_max",
    "municipality_code",
    "municipality",
)


@dataclass(frozen=True)
class JobOutput:
    """A finished municipality job: its code and folder."""

    code: str
    folder: Path


def merge_jobs(jobs: Sequence[JobOutput], crs: CRS) -> gpd.GeoDataFrame:
    """Every job's sites in ``crs``, in municipality order, then by the job's rank."""
    frames = []
    for job in sorted(jobs, key=lambda j: j.code):
        frame = read_vectors(job.folder / "detections.gpkg", "detections", allow_empty=True)
        if len(frame):
            frames.append(frame.to_crs(crs).sort_values("rank", kind="stable"))
    if not frames:
        return gpd.GeoDataFrame({f: [] for f in FIELDS}, geometry=[], crs=crs)
    merged = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=crs)


def observed_share(jobs: Sequence[JobOutput], geometry: shapely.Geometry, crs: CRS) -> float:
    """Share of ``geometry`` (in ``crs``) over which the jobs had valid imagery (their mask is
    not nodata there)."""
    if geometry.is_empty or geometry.area <= 0:
        return 0.0
    valid_area = 0.0
    for job in jobs:
        with rasterio.open(job.folder / "mask.tif") as src:
            g = gpd.GeoSeries([geometry], crs=crs).to_crs(src.crs).iloc[0]
            left, bottom, right, top = src.bounds
            if not shapely.intersects(g, shapely.box(left, bottom, right, top)):
                continue
            win = from_bounds(*g.bounds, transform=src.transform).round_offsets().round_lengths()
            try:
                win = win.intersection(Window(0, 0, src.width, src.height))
            except WindowError:  # only an edge in common
                continue
            data = src.read(1, window=win)
            inside = geometry_mask(
                [g], out_shape=data.shape, transform=src.window_transform(win), invert=True
            )
            valid_area += float((inside & (data != NODATA)).sum()) * abs(src.res[0] * src.res[1])
    return min(1.0, valid_area / geometry.area)


def previous_sites(folder: Path | None, crs: CRS) -> gpd.GeoDataFrame:
    """The open sites of the previous survey: what it detected, plus what it could not observe
    (those may show again)."""
    columns = ["site_id", "area_m2", "first_seen"]
    if folder is None:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=crs)
    detected = read_vectors(folder / "detections.gpkg", "previous detections", allow_empty=True)
    frames = [detected.to_crs(crs)[[*columns, "geometry"]]] if len(detected) else []
    changes = read_vectors(folder / CHANGES_GEOJSON, "previous changes", allow_empty=True)
    if len(changes):
        unseen = changes[changes["status"] == "not_observed"]
        if len(unseen):
            frames.append(unseen.to_crs(crs)[[*columns, "geometry"]])
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=crs)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)


def region_changes(
    current: gpd.GeoDataFrame,
    previous_folder: Path | None,
    jobs: Sequence[JobOutput],
    date: dt.date,
    threshold: float,
) -> ChangeResult:
    """Statuses, carried ids and the changes list; sites in inspection order."""
    crs = current.crs
    previous = previous_sites(previous_folder, crs)
    result = compare_surveys(
        current,
        previous,
        date,
        lambda g: observed_share(jobs, g, crs),
        threshold=threshold,
    )
    result.current = inspection_order(result.current)
    changes = result.changes
    if len(changes):
        changes = changes.sort_values("site_id", kind="stable").reset_index(drop=True)
    result.changes = changes
    return result


def _date_column(values: pd.Series) -> list[dt.date | None]:
    out: list[dt.date | None] = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, pd.Timestamp | dt.datetime):
            out.append(v.date())
        elif isinstance(v, dt.date):
            out.append(v)
        else:
            out.append(dt.date.fromisoformat(str(v)[:10]))
    return out


def write_region_layers(
    result: ChangeResult, folder: Path, date: dt.date, resolution_m: float
) -> list[Path]:
    """``detections.geojson`` / ``.gpkg`` (with ``status``; styled by status in the GeoPackage
    and in ``detections.qml``) and ``changes.geojson`` in ``folder``; the bytes depend only on the sites (GeoPackage timestamps are the survey date).

    Returns:
        The files written.
    """
    current = result.current.copy()
    current["survey_date"] = _date_column(current["survey_date"])
    current["first_seen"] = _date_column(current["first_seen"])
    current = current[[*REGION_FIELDS, "geometry"]]
    changes = result.changes.copy()
    for field in CHANGE_FIELDS:
        if field not in changes:
            changes[field] = None
    changes["first_seen"] = _date_column(changes["first_seen"])
    changes = gpd.GeoDataFrame(
        changes[[*CHANGE_FIELDS, "geometry"]], geometry="geometry", crs=result.current.crs
    )
    precision = geojson_precision(resolution_m)
    paths = [
        folder / "detections.geojson",
        folder / "detections.gpkg",
        folder / "detections.qml",
        folder / CHANGES_GEOJSON,
    ]
    style = detections_qml("status", STATUS_CATEGORIES)
    write_geojson(current, paths[0], id_field="site_id", precision=precision)
    with gpkg_timestamp(date):
        write_gpkg(current, paths[1], style=style)
    write_qml(paths[2], style)
    write_geojson(changes, paths[3], id_field="site_id", precision=precision)
    return paths


@contextmanager
def gpkg_timestamp(date: dt.date) -> Iterator[None]:
    """Within the block, GeoPackages record ``date`` as their last change (GDAL's
    ``OGR_CURRENT_DATE``), so that the same layers give the same bytes."""
    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": f"{date.isoformat()}T00:00:00.000Z"})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})
