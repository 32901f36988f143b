"""Writing site layers: RFC 7946 GeoJSON and GeoPackage through GDAL (pyogrio)."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pyogrio

__all__ = ["geojson_precision", "write_geojson", "write_gpkg"]


def geojson_precision(resolution_m: float) -> int:
    """Decimal places of lon/lat degrees that resolve a tenth of a pixel of ``resolution_m``
    (one degree is at most about 111 km): 7 for 0.5 m pixels, 6 for 5 m."""
    import math

    return max(5, min(9, math.ceil(-math.log10(resolution_m / 10 / 111_320))))


def write_geojson(
    frame: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    id_field: str | None = None,
    precision: int = 7,
) -> None:
    """RFC 7946 GeoJSON through GDAL: WGS 84 lon/lat, right-hand (counter-clockwise) exterior
    rings, coordinates to ``precision`` decimals, ``id_field`` as each feature's ``id``.

    The same frame gives the same bytes (GDAL writes features and fields in order). An existing
    file is replaced.
    """
    target = Path(path)
    if target.exists():
        target.unlink()
    options = {"RFC7946": "YES", "COORDINATE_PRECISION": str(precision), "WRITE_NAME": "NO"}
    wgs = frame.to_crs(4326)
    if id_field:
        # GDAL moves the ID_FIELD out of the properties: give it a copy, so that the field
        # stays an attribute (what QGIS shows) and also becomes the feature's id
        wgs.insert(0, "id", wgs[id_field])
        options["ID_FIELD"] = "id"
    pyogrio.write_dataframe(wgs, target, driver="GeoJSON", layer_options=options)


def write_gpkg(
    frame: gpd.GeoDataFrame, path: str | os.PathLike[str], layer: str = "detections"
) -> None:
    """The same layer in the frame's own (projected) CRS as a GeoPackage layer."""
    pyogrio.write_dataframe(frame, Path(path), driver="GPKG", layer=layer)
