"""What travels between the steps of a tile: its pixels as read, its result; and the reading,
which needs no torch (Ray's read workers never import it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.features import rasterize
from shapely.geometry.base import BaseGeometry

from ..geo import GeoBox, SceneInfo, read_window
from ..report.sampling import SampleLattice, Samples
from .tiling import Tile, TileGroup

__all__ = [
    "PICTURE_TAG",
    "GroupInput",
    "PictureLattice",
    "TileInput",
    "TileResult",
    "read_group",
    "read_tile",
    "saliency_class",
]

#: the tag of a tile's file that holds its samples of the quicklook (``PictureLattice``)
PICTURE_TAG = "PICTURE"


@dataclass(frozen=True)
class PictureLattice:
    """The quicklook's samples as a job's tiles take them (see ``report.SampleLattice``):
    ``lattice`` in the output grid's pixels, and ``key``, which names it in the tiles' tags
    (samples of another lattice, from a run of other code or inputs, are not used)."""

    lattice: SampleLattice
    key: str

    def take(self, item: TileInput) -> str | None:
        """A tile's samples of the quicklook, as its tag value (None: it holds none)."""
        tile = item.tile
        origin = (int(tile.read.row_off), int(tile.read.col_off))
        got = self.lattice.take(tile.core, item.pixels, item.valid, origin)
        return None if got is None else f"{self.key}:{got.encode()}"

    def known(self, text: str | None) -> Samples | None:
        if not text or not text.startswith(f"{self.key}:"):
            return None
        return Samples.decode(text[len(self.key) + 1 :])


@dataclass
class TileInput:
    """A tile's pixels as read: the whole read window and the validity of every pixel.

    Attributes:
        tile: the tile.
        pixels: raw pixel values (bands, h, w) of the read window: uint8 from 8-bit scenes,
            else float32.
        valid: True where every band holds data (read window).
        core_mask: True where the output is wanted: valid and inside the AOI (core window).
    """

    tile: Tile
    pixels: np.ndarray
    valid: np.ndarray
    core_mask: np.ndarray

    @property
    def empty(self) -> bool:
        return not bool(self.core_mask.any())


@dataclass
class TileResult:
    """A tile's core output.

    Attributes:
        tile: the tile.
        probabilities: uint8 (foreground classes, h, w): round(p * 254), 255 = nodata.
        mask: uint8 (h, w): class id, 255 = nodata.
        saliency: uint8 (h, w): round(Grad-CAM * 254), 255 = nodata; None unless asked for.
        pieces: the core's polygons, encoded (``vectorize.encode_pieces``); set where the
            result is made, stored with the tile.
        picture: the core's samples of the quicklook (:meth:`PictureLattice.take`), stored
            with the tile; None when it has none or the job's quicklook takes none.
    """

    tile: Tile
    probabilities: np.ndarray
    mask: np.ndarray
    saliency: np.ndarray | None = None
    pieces: str | None = None
    picture: str | None = None


def saliency_class(classes: list[str]) -> int:
    """The class the saliency explains: ``landfill``, else the first foreground class."""
    return classes.index("landfill") if "landfill" in classes else 1


def read_tile(
    tile: Tile, scenes: list[SceneInfo], grid: GeoBox, bands: int, aoi: BaseGeometry | None
) -> TileInput:
    """Read a tile's window from the scenes and the AOI mask of its core (CPU work)."""
    pixels, valid = read_window(scenes, grid, tile.read, bands, dtype=_pixel_type(scenes))
    return _tile_input(tile, pixels, valid, grid, aoi)


@dataclass
class GroupInput:
    """A :class:`~pipeline.job.tiling.TileGroup`'s pixels as read: the whole window, and each
    tile's :class:`TileInput` (views of the window's arrays: no pixel is copied).

    Attributes:
        group: the group.
        pixels: raw pixel values (bands, h, w) of the group's read window (uint8 or
            float32, as :class:`TileInput`'s).
        valid: True where every band holds data (group's read window).
        items: the inputs of the tiles the group emits, in the group's order.
    """

    group: TileGroup
    pixels: np.ndarray
    valid: np.ndarray
    items: list[TileInput]

    @property
    def origin(self) -> tuple[int, int]:
        """(row, col) of the window's first pixel in the grid."""
        return int(self.group.read.row_off), int(self.group.read.col_off)


def read_group(
    group: TileGroup, scenes: list[SceneInfo], grid: GeoBox, bands: int, aoi: BaseGeometry | None
) -> GroupInput:
    """Read a group's window from the scenes once; each emitted tile gets its part of it."""
    pixels, valid = read_window(scenes, grid, group.read, bands, dtype=_pixel_type(scenes))
    row0, col0 = int(group.read.row_off), int(group.read.col_off)
    items = []
    for tile in group.tiles:
        if tile.id not in group.emit:
            continue
        r, c = int(tile.read.row_off) - row0, int(tile.read.col_off) - col0
        h, w = int(tile.read.height), int(tile.read.width)
        items.append(
            _tile_input(
                tile, pixels[:, r : r + h, c : c + w], valid[r : r + h, c : c + w], grid, aoi
            )
        )
    return GroupInput(group, pixels, valid, items)


def _pixel_type(scenes: list[SceneInfo]) -> str:
    """The type tiles are read in: 8-bit scenes as they are (a quarter of float32's memory and
    copies; the predictor makes the network's float input stripe by stripe, the same
    numbers), any other as float32."""
    return "uint8" if all(np.dtype(s.dtype) == np.uint8 for s in scenes) else "float32"


def _tile_input(
    tile: Tile, pixels: np.ndarray, valid: np.ndarray, grid: GeoBox, aoi: BaseGeometry | None
) -> TileInput:
    r0, c0 = tile.core_offset
    h, w = int(tile.core.height), int(tile.core.width)
    core_mask = valid[r0 : r0 + h, c0 : c0 + w].copy()
    if aoi is not None and core_mask.any():
        inside = (
            rasterize(
                [(aoi, 1)],
                out_shape=(h, w),
                transform=grid.window_transform(tile.core),
                fill=0,
                dtype="uint8",
            )
            > 0
        )
        core_mask &= inside
    return TileInput(tile, pixels, valid, core_mask)
