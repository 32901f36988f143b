"""Geodata in and out: grids, scenes, vector inputs, raster and vector writing.

No torch, Ray or Prefect here. Names are imported from their modules on first use: a model
actor that reads scenes does not import geopandas (0.8 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .features import (
        date_columns,
        geojson_precision,
        store_gpkg_style,
        write_geojson,
        write_gpkg,
    )
    from .grid import MAX_UTM_SPAN_DEG, GeoBox, utm_crs_for
    from .rasters import (
        MASK_FILE,
        MASK_STYLE,
        NODATA,
        PROBABILITIES_FILE,
        PROBABILITIES_STYLE,
        SALIENCY_FILE,
        SALIENCY_STYLE,
        SCALE,
        RasterWriter,
        tile_metadata,
        work_rasters,
        write_cogs,
    )
    from .scenes import SceneInfo, gdal_reason, grid_offset, open_scenes, read_window
    from .styles import (
        CONFIDENCE_CATEGORIES,
        Category,
        class_colours,
        detections_qml,
        mask_qml,
        probabilities_qml,
        saliency_qml,
        write_qml,
    )
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
    "CONFIDENCE_CATEGORIES",
    "MASK_FILE",
    "MASK_STYLE",
    "MAX_UTM_SPAN_DEG",
    "NAME_FIELDS",
    "NODATA",
    "PROBABILITIES_FILE",
    "PROBABILITIES_STYLE",
    "SALIENCY_FILE",
    "SALIENCY_STYLE",
    "SCALE",
    "Category",
    "GeoBox",
    "RasterWriter",
    "SceneInfo",
    "aoi_union",
    "class_colours",
    "date_columns",
    "detections_qml",
    "gdal_reason",
    "geojson_precision",
    "grid_offset",
    "mask_qml",
    "open_scenes",
    "polygonal",
    "probabilities_qml",
    "read_vectors",
    "read_window",
    "saliency_qml",
    "select_features",
    "store_gpkg_style",
    "tile_metadata",
    "utm_crs_for",
    "work_rasters",
    "write_cogs",
    "write_geojson",
    "write_gpkg",
    "write_qml",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "CODE_FIELDS": ".vectors",
        "CONFIDENCE_CATEGORIES": ".styles",
        "MASK_FILE": ".rasters",
        "MASK_STYLE": ".rasters",
        "MAX_UTM_SPAN_DEG": ".grid",
        "NAME_FIELDS": ".vectors",
        "NODATA": ".rasters",
        "PROBABILITIES_FILE": ".rasters",
        "PROBABILITIES_STYLE": ".rasters",
        "SALIENCY_FILE": ".rasters",
        "SALIENCY_STYLE": ".rasters",
        "SCALE": ".rasters",
        "Category": ".styles",
        "GeoBox": ".grid",
        "RasterWriter": ".rasters",
        "SceneInfo": ".scenes",
        "aoi_union": ".vectors",
        "class_colours": ".styles",
        "date_columns": ".features",
        "detections_qml": ".styles",
        "gdal_reason": ".scenes",
        "geojson_precision": ".features",
        "grid_offset": ".scenes",
        "mask_qml": ".styles",
        "open_scenes": ".scenes",
        "polygonal": ".vectors",
        "probabilities_qml": ".styles",
        "read_vectors": ".vectors",
        "read_window": ".scenes",
        "saliency_qml": ".styles",
        "select_features": ".vectors",
        "store_gpkg_style": ".features",
        "tile_metadata": ".rasters",
        "utm_crs_for": ".grid",
        "work_rasters": ".rasters",
        "write_cogs": ".rasters",
        "write_geojson": ".features",
        "write_gpkg": ".features",
        "write_qml": ".styles",
    },
)
