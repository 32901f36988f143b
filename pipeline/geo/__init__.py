"""Geodata in and out: grids, scenes, vector inputs, raster and vector writing.

No torch, Ray or Prefect here.
"""

from .features import geojson_precision, write_geojson, write_gpkg
from .grid import MAX_UTM_SPAN_DEG, GeoBox, utm_crs_for
from .rasters import MASK_FILE, NODATA, PROBABILITIES_FILE, SCALE, RasterWriter, work_rasters
from .scenes import SceneInfo, gdal_reason, open_scenes, read_window
from .vectors import (
    CODE_FIELDS,
    NAME_FIELDS,
    aoi_union,
    polygonal,
    read_vectors,
    select_features,
)

__all__ = [
    "CODE_FIELDS",
    "MASK_FILE",
    "MAX_UTM_SPAN_DEG",
    "NAME_FIELDS",
    "NODATA",
    "PROBABILITIES_FILE",
    "SCALE",
    "GeoBox",
    "RasterWriter",
    "SceneInfo",
    "aoi_union",
    "gdal_reason",
    "geojson_precision",
    "open_scenes",
    "polygonal",
    "read_vectors",
    "read_window",
    "select_features",
    "utm_crs_for",
    "work_rasters",
    "write_geojson",
    "write_gpkg",
]
