"""Cutting the output grid into tiles: a core plus a halo of model context on each side."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rasterio.features import rasterize
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from ..errors import InputError
from ..geo import GeoBox

__all__ = ["Tile", "TileGroup", "group_tiles", "plan_tiles"]


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


@dataclass(frozen=True)
class TileGroup:
    """Neighbouring tiles read and run through the network as one window, the union of their
    read windows: the halo they share is read and computed once (a 2 x 2 block of 1024 px
    tiles with a 28 px halo: 2104 x 2104 px instead of four 1080 x 1080, 5 % fewer pixels).
    Each tile's results are its own core's, as if it had been run alone.

    Attributes:
        tiles: the tiles, row-major.
        read: the union of their read windows.
        emit: ids of the tiles whose results are wanted (those not finished yet).
    """

    tiles: tuple[Tile, ...]
    read: Window
    emit: frozenset[str]


def group_tiles(lattice: list[Tile], side: int, todo: list[Tile] | None = None) -> list[TileGroup]:
    """The tiles of ``todo`` (default: all of ``lattice``) in groups cut from the whole
    ``lattice`` of a job's tiles: blocks of ``side`` x ``side`` tiles (fewer at the lattice's
    last rows and columns), block-row-major. A block with a tile missing (outside the AOI) is
    split into single tiles. A tile's group, and with it the arithmetic of its numbers, is
    therefore the same whichever tiles are left to do (a resumed job gets the same bytes);
    a group is in the result when any of its tiles is in ``todo``, with only those emitted.
    """
    wanted = {t.id for t in (lattice if todo is None else todo)}
    if side <= 1 or not lattice:
        return [_group([t], wanted) for t in lattice if t.id in wanted]
    last_row = max(t.row for t in lattice)
    last_col = max(t.col for t in lattice)
    blocks: dict[tuple[int, int], list[Tile]] = {}
    for t in lattice:
        blocks.setdefault((t.row // side, t.col // side), []).append(t)
    groups: list[TileGroup] = []
    for (br, bc), members in sorted(blocks.items()):
        rows = min(side, last_row - br * side + 1)
        cols = min(side, last_col - bc * side + 1)
        members.sort(key=lambda t: (t.row, t.col))
        parts = [members] if len(members) == rows * cols else [[t] for t in members]
        groups.extend(_group(p, wanted) for p in parts if any(t.id in wanted for t in p))
    return groups


def _group(tiles: list[Tile], wanted: set[str]) -> TileGroup:
    col0 = min(int(t.read.col_off) for t in tiles)
    row0 = min(int(t.read.row_off) for t in tiles)
    col1 = max(int(t.read.col_off + t.read.width) for t in tiles)
    row1 = max(int(t.read.row_off + t.read.height) for t in tiles)
    return TileGroup(
        tuple(tiles),
        Window(col0, row0, col1 - col0, row1 - row0),
        frozenset(t.id for t in tiles if t.id in wanted),
    )
