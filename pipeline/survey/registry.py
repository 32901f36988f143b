"""The site registry of a region, ``ROOT/registry.gpkg``: every site ever seen, and its history.

The registry is rebuilt from the published surveys under ROOT (their ``detections.gpkg`` and
``changes.geojson``, in date order), so it is a pure function of them: re-running a survey, or
resuming one, gives the same file, and a survey re-done for a date replaces that date's rows.

Layers:
- ``sites`` (polygons, the survey CRS): ``site_id``, ``first_seen``, ``last_seen`` (the last
  survey that detected it), ``last_status`` (its status in the newest survey that mentions it:
  a current status, ``disappeared``, ``not_observed`` or ``merged``), ``surveys`` (how many
  detected it), ``area_m2`` and ``score_max`` of its latest detection; the geometry is the
  latest one.
- ``history`` (a table, no geometry): one row per site and survey: ``site_id``,
  ``survey_date``, ``status``, ``area_m2``, ``score_max``, ``score_mean``, ``municipality``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

__all__ = ["REGISTRY", "SurveyRecord", "write_registry"]

REGISTRY = "registry.gpkg"


@dataclass(frozen=True)
class SurveyRecord:
    """One published survey as the registry reads it.

    Attributes:
        date: the survey date.
        detections: its sites (with ``status``), in the registry's CRS.
        changes: previous sites not found again (``disappeared`` / ``not_observed``).
        merged: previous site ids merged into a current site.
    """

    date: dt.date
    detections: gpd.GeoDataFrame
    changes: gpd.GeoDataFrame
    merged: dict[str, str]


def _history(surveys: Sequence[SurveyRecord]) -> pd.DataFrame:
    rows = []
    for s in surveys:
        for _, r in s.detections.iterrows():
            rows.append(
                {
                    "site_id": r["site_id"],
                    "survey_date": s.date,
                    "status": r["status"],
                    "area_m2": float(r["area_m2"]),
                    "score_max": float(r["score_max"]),
                    "score_mean": float(r["score_mean"]),
                    "municipality": r.get("municipality"),
                }
            )
        for _, r in s.changes.iterrows():
            rows.append(
                {
                    "site_id": r["site_id"],
                    "survey_date": s.date,
                    "status": r["status"],
                    "area_m2": None,
                    "score_max": None,
                    "score_mean": None,
                    "municipality": r.get("municipality"),
                }
            )
        for old in sorted(s.merged):
            rows.append(
                {
                    "site_id": old,
                    "survey_date": s.date,
                    "status": "merged",
                    "area_m2": None,
                    "score_max": None,
                    "score_mean": None,
                    "municipality": None,
                }
            )
    frame = pd.DataFrame(
        rows,
        columns=[
            "site_id",
            "survey_date",
            "status",
            "area_m2",
            "score_max",
            "score_mean",
            "municipality",
        ],
    )
    return frame.sort_values(["site_id", "survey_date"], kind="stable").reset_index(drop=True)


def _sites(surveys: Sequence[SurveyRecord], history: pd.DataFrame, crs: object) -> gpd.GeoDataFrame:
    latest: dict[str, tuple[object, float, float]] = {}
    for s in surveys:  # in date order: later detections overwrite
        for _, r in s.detections.iterrows():
            latest[r["site_id"]] = (r.geometry, float(r["area_m2"]), float(r["score_max"]))
        for _, r in s.changes.iterrows():  # a site known only from changes keeps its outline
            latest.setdefault(r["site_id"], (r.geometry, float(r["area_m2"]), float("nan")))
    rows = []
    for site_id, h in history.groupby("site_id", sort=True):
        detected = h[h["status"].isin(["new", "grown", "persisting", "shrunk"])]
        geometry, area, score = latest[str(site_id)]
        first = h["survey_date"].min()
        rows.append(
            {
                "site_id": site_id,
                "first_seen": detected["survey_date"].min() if len(detected) else first,
                "last_seen": detected["survey_date"].max() if len(detected) else None,
                "last_status": h["status"].iloc[-1],
                "surveys": len(detected),
                "area_m2": area,
                "score_max": None if score != score else score,
                "geometry": geometry,
            }
        )
    columns = ["site_id", "first_seen", "last_seen", "last_status", "surveys", "area_m2"]
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in [*columns, "score_max"]}, geometry=[], crs=crs)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def write_registry(
    root: str | os.PathLike[str], surveys: Sequence[SurveyRecord], crs: object
) -> Path:
    """(Re)write ``ROOT/registry.gpkg`` from the surveys, oldest first; atomic (a temporary
    file renamed into place)."""
    ordered = sorted(surveys, key=lambda s: s.date)
    history = _history(ordered)
    sites = _sites(ordered, history, crs)
    target = Path(root) / REGISTRY
    fd, tmp_name = tempfile.mkstemp(prefix=".registry-", suffix=".gpkg", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        pyogrio.write_dataframe(sites, tmp, driver="GPKG", layer="sites")
        pyogrio.write_dataframe(
            pd.DataFrame(history), tmp, driver="GPKG", layer="history", append=True
        )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
