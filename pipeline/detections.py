"""Detections as GIS layers: ranking, stable site ids, RFC 7946 GeoJSON and GeoPackage."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
from pyproj import CRS, Transformer
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient
from shapely.ops import transform as shp_transform

from .vectorize import Site

__all__ = ["FIELDS", "AreaUnit", "detections_frame", "geohash", "write_geojson", "write_gpkg"]

#: property names of a detection, in the order they are written.
FIELDS = (
    "site_id",
    "class",
    "score_max",
    "score_mean",
    "area_m2",
    "rank",
    "municipality_code",
    "municipality",
    "survey_date",
    "model_id",
)

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


@dataclass(frozen=True)
class AreaUnit:
    """An area a site can be attributed to (a municipality, or the AOI itself)."""

    code: str | None
    name: str | None
    geometry: BaseGeometry


def detections_frame(
    sites: Sequence[Site],
    crs: CRS,
    classes: Sequence[str],
    units: Sequence[AreaUnit],
    model_id: str,
    survey_date: str | None,
) -> gpd.GeoDataFrame:
    """Rank sites and give them ids and attributes, in the output grid's CRS.

    Rank 1 is the most likely: by ``score_max``, then ``score_mean``, then area, then position,
    so the order is fully determined by the sites. ``site_id`` is ``WW-`` plus the geohash of the
    site's representative point: the same place gets the same id in every survey.
    """
    to_wgs = Transformer.from_crs(crs, 4326, always_xy=True)
    rows: list[dict[str, Any]] = []
    for site in sites:
        point = site.geometry.representative_point()
        lon, lat = to_wgs.transform(point.x, point.y)
        unit = max(units, key=lambda u: u.geometry.intersection(site.geometry).area, default=None)
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
                "area_m2": round(site.area_m2, 1),
                "municipality_code": unit.code if unit else None,
                "municipality": unit.name if unit else None,
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


def _round_coords(coords: Any, digits: int) -> Any:
    if isinstance(coords, list | tuple):
        if coords and isinstance(coords[0], float | int):
            return [round(float(c), digits) for c in coords]
        return [_round_coords(c, digits) for c in coords]
    return coords


def write_geojson(frame: gpd.GeoDataFrame, path: str | os.PathLike[str], digits: int = 7) -> None:
    """RFC 7946 GeoJSON: WGS 84 lon/lat, counter-clockwise exterior rings, deterministic bytes."""
    to_wgs = Transformer.from_crs(frame.crs, 4326, always_xy=True).transform
    features = []
    for record, geometry in zip(
        frame[list(FIELDS)].to_dict("records"), frame.geometry, strict=True
    ):
        props = {f: _jsonable(record[f]) for f in FIELDS}
        g = mapping(_orient_all(shp_transform(to_wgs, geometry)))
        features.append(
            {
                "type": "Feature",
                "id": props["site_id"],
                "properties": props,
                "geometry": {
                    "type": g["type"],
                    "coordinates": _round_coords(g["coordinates"], digits),
                },
            }
        )
    doc = {"type": "FeatureCollection", "features": features}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def _orient_all(geom: BaseGeometry) -> BaseGeometry:
    if geom.geom_type == "Polygon":
        return orient(geom, 1.0)
    if geom.geom_type == "MultiPolygon":
        from shapely.geometry import MultiPolygon

        return MultiPolygon([orient(g, 1.0) for g in geom.geoms])
    return geom


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def write_gpkg(frame: gpd.GeoDataFrame, path: str | os.PathLike[str]) -> None:
    """The same layer in the output grid's CRS as a GeoPackage (layer ``detections``)."""
    frame.to_file(path, driver="GPKG", layer="detections")
