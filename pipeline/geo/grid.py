"""The output grid: shape, affine transform and CRS together (after odc-geo's GeoBox)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from pyproj import CRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..errors import CRSError

__all__ = ["MAX_UTM_SPAN_DEG", "GeoBox", "utm_crs_for"]

#: widest extent in longitude (degrees) planned in one UTM zone: 4 zones; past that the
#: Transverse Mercator scale error grows quickly and far points do not project at all.
MAX_UTM_SPAN_DEG = 24.0


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS that contains a lon/lat point (pyproj's CRS database, as
    geopandas' ``estimate_utm_crs``): EPSG:326xx north of the equator, 327xx south."""
    lon = (lon + 180.0) % 360.0 - 180.0
    lat = min(max(lat, -80.0), 84.0)
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon, lat, lon, lat),
    )
    # zones overlap at their edges, and Norway/Svalbard have exceptions: take the zone whose
    # central meridian is nearest, on the point's side of the equator
    north = [i for i in infos if i.code.startswith("326")] if lat >= 0 else []
    south = [i for i in infos if i.code.startswith("327")] if lat < 0 else []
    candidates = north or south or list(infos)
    if not candidates:
        raise CRSError(f"no UTM zone contains lon {lon:.4f}, lat {lat:.4f}: pass --crs EPSG:N")

    def distance(info: object) -> float:
        zone = int(info.code[-2:])  # type: ignore[attr-defined]
        central = -183.0 + 6.0 * zone
        return abs((lon - central + 180.0) % 360.0 - 180.0)

    best = min(candidates, key=distance)
    return CRS.from_epsg(int(best.code))


@dataclass(frozen=True)
class GeoBox:
    """A north-up pixel grid in a projected CRS.

    Attributes:
        width: columns.
        height: rows.
        transform: affine from pixel (col, row) to map (x, y), pixel corners.
        crs: the grid's CRS, as WKT-able pyproj CRS.
    """

    width: int
    height: int
    transform: Affine
    crs: CRS

    @classmethod
    def from_bounds(
        cls,
        bounds: tuple[float, float, float, float],
        resolution: float,
        crs: CRS,
        align: float = 0.0,
    ) -> GeoBox:
        """The smallest grid of ``resolution`` metres that covers ``bounds``.

        Pixel edges are snapped to multiples of ``align`` (default: the resolution), so that
        grids of the same CRS and resolution line up whatever the bounds.
        """
        if not crs.is_projected:
            raise CRSError(
                f"the output CRS {crs.to_string()} is not projected: choose a "
                "projected CRS in metres (e.g. a UTM zone)"
            )
        step = align or resolution
        left = math.floor(bounds[0] / step) * step
        top = math.ceil(bounds[3] / step) * step
        right = math.ceil(bounds[2] / step) * step
        bottom = math.floor(bounds[1] / step) * step
        width = max(1, round((right - left) / resolution))
        height = max(1, round((top - bottom) / resolution))
        return cls(width, height, Affine(resolution, 0.0, left, 0.0, -resolution, top), crs)

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (metres)."""
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform.c, self.transform.f
        return (left, top - self.height * self.resolution, left + self.width * self.resolution, top)

    def window_transform(self, window: Window) -> Affine:
        """Affine of a window of this grid (windows may extend past its edges)."""
        return window_transform(window, self.transform)

    def to_dict(self) -> dict[str, object]:
        return {
            "crs": self.crs.to_string(),
            "width": self.width,
            "height": self.height,
            "transform": list(self.transform)[:6],
            "resolution_m": self.resolution,
        }
