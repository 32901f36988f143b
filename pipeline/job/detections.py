"""Detections as a table: ranking, stable site ids and attributes of every site."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from .vectorize import Site

__all__ = [
    "CONFIDENCE_LEVELS",
    "FIELDS",
    "assign_units",
    "confidence",
    "detections_frame",
    "geohash",
]

#: property names of a detection, in the order they are written.
FIELDS = (
    "site_id",
    "class",
    "score_max",
    "score_mean",
    "confidence",
    "area_m2",
    "rank",
    "municipality_code",
    "municipality",
    "survey_date",
    "model_id",
)

#: values of ``confidence``, most confident first.
CONFIDENCE_LEVELS = ("high", "medium", "low")

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lon: float, lat: float, precision: int = 9) -> str:
    """Standard geohash of a WGS 84 point (precision 9 is a cell of about 5 x 5 m)."""
    lon_lo, lon_hi, lat_lo, lat_hi = -180.0, 180.0, -90.0, 90.0
    out: list[str] = []
    bits, ch, even = 0, 0, True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            ch = (ch << 1) | (lon >= mid)
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            ch = (ch << 1) | (lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
        even = not even
        bits += 1
        if bits == 5:
            out.append(_BASE32[ch])
            bits, ch = 0, 0
    return "".join(out)


def confidence(score_max: float, high: float = 0.8, medium: float = 0.5) -> str:
    """The confidence band of a site: ``high`` from ``high`` up, ``medium`` from ``medium``,
    ``low`` below (the bands an inspector reads)."""
    if score_max >= high:
        return "high"
    return "medium" if score_max >= medium else "low"


def assign_units(geometries: Sequence[BaseGeometry], units: gpd.GeoDataFrame) -> list[int | None]:
    """For each geometry, the row (position) of the unit it overlaps most, or None.

    A spatial join (an STR-tree query) finds the candidate pairs; only those are intersected.

    Args:
        geometries: the sites, in the units' CRS.
        units: areas (municipalities, or the AOI itself) with any attributes.
    """
    if not len(geometries) or units.empty:
        return [None] * len(geometries)
    sites = gpd.GeoDataFrame(geometry=list(geometries), crs=units.crs)
    pairs = gpd.sjoin(sites, units.reset_index(drop=True), predicate="intersects")
    if pairs.empty:
        return [None] * len(geometries)
    right = units.geometry.reset_index(drop=True).values[pairs["index_right"].to_numpy()]
    pairs["_overlap"] = shapely.area(shapely.intersection(pairs.geometry.values, right))
    # largest overlap first; equal overlaps go to the first unit, so the choice is deterministic
    pairs = pairs.reset_index(names="_site").sort_values(
        ["_site", "_overlap", "index_right"], ascending=[True, False, True]
    )
    best = pairs.drop_duplicates("_site").set_index("_site")["index_right"]
    return [int(best[i]) if i in best.index else None for i in range(len(geometries))]


def detections_frame(
    sites: Sequence[Site],
    crs: CRS,
    classes: Sequence[str],
    units: gpd.GeoDataFrame,
    model_id: str,
    survey_date: dt.date | None,
    confidence_bands: tuple[float, float] = (0.8, 0.5),
) -> gpd.GeoDataFrame:
    """Rank sites and give them ids and attributes, in the output grid's CRS.

    Rank 1 is the most likely: by ``score_max``, then ``score_mean``, then area, then position,
    so the order is fully determined by the sites. ``site_id`` is ``WW-`` plus the geohash of the
    site's representative point: the same place gets the same id in every survey.

    Args:
        sites: the vectorized sites.
        crs: their CRS (the output grid's).
        classes: class names, 0 the background.
        units: areas to attribute sites to, in ``crs``, with ``code`` and ``name`` columns.
        model_id: written into every row.
        survey_date: written into every row (a date column in GeoPackage and GeoJSON).
        confidence_bands: the lowest ``score_max`` of ``high`` and of ``medium`` confidence
            (the rounded score is compared, so the band agrees with the score written).
    """
    high, medium = confidence_bands
    to_wgs = Transformer.from_crs(crs, 4326, always_xy=True)
    which = assign_units([s.geometry for s in sites], units)
    rows: list[dict[str, Any]] = []
    for site, unit in zip(sites, which, strict=True):
        point = site.geometry.representative_point()
        lon, lat = to_wgs.transform(point.x, point.y)
        code = units["code"].iloc[unit] if unit is not None else None
        name = units["name"].iloc[unit] if unit is not None else None
        rows.append(
            {
                "_key": (
                    -round(site.score_max, 6),
                    -round(site.score_mean, 6),
                    -round(site.area_m2, 3),
                    round(point.x, 3),
                    round(point.y, 3),
                ),
                "site_id": "WW-" + geohash(lon, lat),
                "class": classes[site.class_id],
                "score_max": round(site.score_max, 4),
                "score_mean": round(site.score_mean, 4),
                "confidence": confidence(round(site.score_max, 4), high, medium),
                "area_m2": round(site.area_m2, 1),
                "municipality_code": code,
                "municipality": name,
                "survey_date": survey_date,
                "model_id": model_id,
                "geometry": _orient_all(site.geometry),
            }
        )
    rows.sort(key=lambda r: r["_key"])
    seen: dict[str, int] = {}
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        n = seen.get(row["site_id"], 0)
        seen[row["site_id"]] = n + 1
        if n:
            row["site_id"] = f"{row['site_id']}-{n + 1}"
        del row["_key"]
    columns = [*FIELDS, "geometry"]
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in FIELDS}, geometry=[], crs=crs)[columns]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)[columns]


def _orient_all(geom: BaseGeometry) -> BaseGeometry:
    if geom.geom_type == "Polygon":
        return orient(geom, 1.0)
    if geom.geom_type == "MultiPolygon":
        from shapely.geometry import MultiPolygon

        return MultiPolygon([orient(g, 1.0) for g in geom.geoms])
    return geom
