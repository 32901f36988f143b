"""Writing site layers: RFC 7946 GeoJSON and GeoPackage through GDAL (pyogrio)."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyogrio

__all__ = [
    "date_columns",
    "geojson_precision",
    "store_gpkg_style",
    "write_geojson",
    "write_gpkg",
]


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


def date_columns(frame: gpd.GeoDataFrame, dates: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    """The frame with ``dates`` and every column of ``datetime.date`` values typed as Arrow
    dates, so that GDAL writes them as Date fields (as text otherwise), also when empty or null."""
    out = frame.copy()
    for column in out.columns:
        if column == out.geometry.name:
            continue
        values = out[column].dropna()
        is_date = len(values) and all(
            isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in values
        )
        if column in dates or is_date:
            out[column] = out[column].astype(pd.ArrowDtype(pa.date32()))
    return out


def write_gpkg(
    frame: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    layer: str = "detections",
    *,
    dates: tuple[str, ...] = (),
    style: str | None = None,
) -> None:
    """The same layer in the frame's own (projected) CRS as a GeoPackage layer.

    Args:
        frame: the features.
        path: the GeoPackage (replaced if it exists).
        layer: the layer's name.
        dates: columns written as Date fields (columns of ``datetime.date`` values always are).
        style: a QGIS style (QML) stored in the GeoPackage as the layer's default style.
    """
    target = Path(path)
    if target.exists():
        target.unlink()
    # through Arrow: the only way pyogrio types a column as Date
    pyogrio.write_dataframe(
        date_columns(frame, dates), target, driver="GPKG", layer=layer, use_arrow=True
    )
    if style is not None:
        store_gpkg_style(target, layer, style, description="wastewatch detections")


_LAYER_STYLES = """
CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256),
  f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
  useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME
)"""


def store_gpkg_style(
    path: str | os.PathLike[str],
    layer: str,
    qml: str,
    name: str = "wastewatch",
    description: str = "",
) -> None:
    """Store ``qml`` as ``layer``'s default QGIS style in the GeoPackage at ``path``.

    The ``layer_styles`` table is QGIS's convention (QGIS creates the same one when a user saves
    a style into a GeoPackage); it is registered in ``gpkg_contents`` as an attribute table so
    that the file stays a valid GeoPackage. A default style already stored for ``layer`` stops
    being the default.
    """
    with sqlite3.connect(os.fspath(path)) as db:
        (geom_column,) = db.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        # GDAL's OGR_CURRENT_DATE, when set, fixes the timestamps (same layers, same bytes)
        now = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") or dt.datetime.now(
            dt.UTC
        ).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        db.execute(_LAYER_STYLES)
        db.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "description, last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
            "'QGIS layer styles', ?)",
            (now,),
        )
        db.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (layer,))
        db.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
            "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, "
            "ui, update_time) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', NULL, ?)",
            (layer, geom_column, name, qml, description, now),
        )
    db.close()
