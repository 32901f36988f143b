"""Reading vector inputs (AOIs, labels, truth) with explicit CRS handling."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyproj import CRS
from shapely import make_valid, union_all
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from ..errors import CRSError, InputError, InputNotFoundError, VectorReadError

if TYPE_CHECKING:  # geopandas where vectors are read: not in the model actors (polygonal)
    import geopandas as gpd

__all__ = [
    "CODE_FIELDS",
    "NAME_FIELDS",
    "aoi_union",
    "polygonal",
    "read_vectors",
    "select_features",
]

#: attribute names tried, in order, for a municipality (or area) code and name.
CODE_FIELDS = ("com_istat_code", "municipality_code", "code", "id")
NAME_FIELDS = ("name", "municipality", "NAME")


def _first_spatial_layer(path: Path) -> str | None:
    """The first layer with geometries of a multi-layer file (a GeoPackage with a QGIS
    ``layer_styles`` table, say); None for single-layer files."""
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
    except Exception:  # unreadable: let the read report it
        return None
    if len(layers) <= 1:
        return None
    spatial = [str(name) for name, geometry in layers if geometry]
    return spatial[0] if spatial else None


def read_vectors(
    path: str | os.PathLike[str], what: str = "vector file", allow_empty: bool = False
) -> gpd.GeoDataFrame:
    """Read a GeoJSON/GeoPackage/shapefile, insisting on a CRS and at least one geometry.

    GeoJSON is WGS 84 by definition (RFC 7946); any other file without a CRS (a shapefile
    without ``.prj``) is refused rather than guessed. A file without features is an error unless
    ``allow_empty`` (e.g. detections: none found is an answer). Invalid geometries (a
    self-intersecting "bow-tie" ring, say) are repaired here, once, with GEOS' ``make_valid``:
    every later step sees only valid geometry.

    Raises:
        InputNotFoundError, VectorReadError, CRSError, InputError.
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"{what} {p} does not exist: check the path")
    import geopandas as gpd

    try:
        gdf = gpd.read_file(p, layer=_first_spatial_layer(p))
    except Exception as exc:  # pyogrio raises several unrelated types for unreadable files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VectorReadError(
            f"{what} {p} cannot be read as vector data ({first}): "
            "give a GeoJSON, GeoPackage or shapefile"
        ) from None
    if gdf.crs is None:
        if p.suffix.lower() in (".geojson", ".json"):
            gdf = gdf.set_crs(4326)
        else:
            raise CRSError(
                f"{what} {p} has no CRS: add one (e.g. a .prj beside a shapefile, or "
                "`ogr2ogr -a_srs EPSG:4326 out.gpkg in.shp`)"
            )
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = gdf.geometry[invalid].make_valid()
    if gdf.empty and not allow_empty:
        raise InputError(f"{what} {p} holds no geometry: give a file with at least one feature")
    return gdf


def select_features(gdf: gpd.GeoDataFrame, codes: Sequence[str], what: str) -> gpd.GeoDataFrame:
    """Keep the features whose code attribute (see :data:`CODE_FIELDS`) is in ``codes``."""
    if not codes:
        return gdf
    field = next((f for f in CODE_FIELDS if f in gdf.columns), None)
    if field is None:
        raise InputError(
            f"{what} has no code attribute to select by (looked for {', '.join(CODE_FIELDS)})"
        )
    wanted = {str(c) for c in codes}
    picked = gdf[gdf[field].astype(str).isin(wanted)]
    missing = wanted - set(picked[field].astype(str))
    if missing:
        raise InputError(
            f"{what} has no feature with {field} {', '.join(sorted(missing))}: check the codes"
        )
    return picked


def polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The polygonal part of a geometry (a repair or an intersection may add lines or points);
    None when there is none."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [polygonal(g) for g in getattr(geom, "geoms", [])]
    kept = [p for p in parts if p is not None]
    return union_all(kept) if kept else None


def aoi_union(gdf: gpd.GeoDataFrame, crs: CRS | None = None) -> BaseGeometry:
    """The union of the polygons of ``gdf`` (in ``crs`` when given).

    Raises:
        InputError: the features have no area (points or lines only).
    """
    frame = gdf if crs is None else gdf.to_crs(crs)
    union = polygonal(make_valid(union_all(list(frame.geometry))))
    if union is None or union.area <= 0:
        raise InputError("the area of interest has no area: give polygons, not points or lines")
    return union
