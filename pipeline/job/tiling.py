"""Cutting the output grid into tiles: a core plus a halo of model context on each side."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from ..errors import InputError
from ..geo import GeoBox

__all__ = ["Tile", "plan_tiles"]


@dataclass(frozen=True)
class Tile:
    """One unit of work.

    Attributes:
        id: deterministic id (grid, position and size), stable across runs of the same job.
        row: tile row in the tile lattice.
        col: tile column in the tile lattice.
        core: the window of the output grid this tile writes (clipped to the grid).
        read: the window read and fed to the network: the core plus the halo, unclipped
            (pixels outside the scenes come back as nodata).
    """

    id: str
    row: int
    col: int
    core: Window
    read: Window

    @property
    def core_offset(self) -> tuple[int, int]:
        """(row, col) of the core's first pixel inside the read window."""
        return (
            int(self.core.row_off - self.read.row_off),
            int(self.core.col_off - self.read.col_off),
        )


def plan_tiles(
    grid: GeoBox, tile_size: int, halo: int, align: int, aoi: BaseGeometry | None = None
) -> list[Tile]:
    """Tiles covering ``grid``, in row-major order, skipping those whose core misses the AOI.

    Args:
        grid: the output grid.
        tile_size: core side in pixels; rounded up to a multiple of ``align``, and clipped to
            the grid (a tile larger than the grid is the grid).
        halo: context on each side (a multiple of ``align``: see ``models.halo_for``).
        align: the model's tile alignment (its output stride, or its internal downsampling
            for segmentation networks); every read window starts on a multiple of it, so each
            tile sees the same pooling lattice as a whole-image pass would.
        aoi: the area of interest in the grid's CRS.

    Raises:
        InputError: a tile size that is not positive, or a halo not a multiple of ``align``.
    """
    if tile_size <= 0:
        raise InputError(f"--tile-size must be positive, got {tile_size}")
    if halo % align:
        raise InputError(f"halo {halo} is not a multiple of the tile alignment {align}")
    core = -(-min(tile_size, max(grid.width, grid.height)) // align) * align
    n_rows, n_cols = -(-grid.height // core), -(-grid.width // core)
    covered = None
    if aoi is not None:
        # which tile cells the AOI touches, rasterized on the tile lattice
        from affine import Affine

        t = grid.transform @ Affine.scale(core)
        covered = rasterize(
            [(aoi, 1)],
            out_shape=(n_rows, n_cols),
            transform=t,
            fill=0,
            all_touched=True,
            dtype="uint8",
        )
    key = (
        f"{grid.crs.to_string()}|{tuple(grid.transform)[:6]}|"
        f"{grid.width}x{grid.height}|{core}|{halo}"
    )
    prefix = hashlib.sha256(key.encode()).hexdigest()[:8]
    tiles = []
    for r in range(n_rows):
        for c in range(n_cols):
            if covered is not None and not covered[r, c]:
                continue
            row_off, col_off = r * core, c * core
            width, height = min(core, grid.width - col_off), min(core, grid.height - row_off)
            core_win = Window(col_off, row_off, width, height)
            # read window: halo on each side, extended right/down so the size is a multiple of align
            read_w = -(-(width + 2 * halo) // align) * align
            read_h = -(-(height + 2 * halo) // align) * align
            read_win = Window(col_off - halo, row_off - halo, read_w, read_h)
            tiles.append(Tile(f"{prefix}-r{r:04d}c{c:04d}", r, c, core_win, read_win))
    return tiles
