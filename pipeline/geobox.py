"""The output grid: shape, affine transform and CRS together (after odc-geo's GeoBox)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from pyproj import CRS
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from .errors import CRSError

__all__ = ["GeoBox", "utm_crs_for"]


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS (EPSG:326xx or 327xx) that contains a lon/lat point."""
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


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
