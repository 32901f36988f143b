"""Finished tiles on disk: one small GeoTIFF per tile, a ledger of finished tile ids, and the
VRT mosaics that present them as whole rasters.

A tile's file is written under a temporary name and renamed into place, then its id is appended
to the ledger: a process killed at any moment leaves only whole tiles behind, and a run that
resumes trusts exactly the ids of the ledger. Writing a tile twice (a retried Ray call) writes
the same bytes again.
"""

from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window

from .grid import GeoBox

__all__ = ["FLAT_BLOCK", "BandSpec", "TileStore", "tile_tags", "write_mosaic_vrt"]

LEDGER = "ledger.txt"
#: block side of the tile files (tiled: whole blocks are what GDAL reads and caches)
_BLOCK = 256
#: block side of the rasters of the whole grid the tiles are copied into (the COGs' own)
FLAT_BLOCK = 512
_TILES = "tiles"


class TileStore:
    """Per-tile GeoTIFFs (uncompressed: cheap to write, compressed once into the COGs) and the
    ledger of the tiles finished, in ``folder``.

    Args:
        folder: where ``tiles/`` and ``ledger.txt`` live (a job's ``work`` folder).
        grid: the grid the tiles are windows of (each tile file is georeferenced).
        nodata: the value of an empty tile (one with no valid pixel): such tiles are recorded
            in the ledger but get no file.
    """

    def __init__(self, folder: str | os.PathLike[str], grid: GeoBox, nodata: int) -> None:
        self.folder = Path(folder)
        self.grid = grid
        self._crs = grid.crs.to_wkt()
        self.tiles = self.folder / _TILES
        self.ledger = self.folder / LEDGER
        self.nodata = nodata
        self.tiles.mkdir(parents=True, exist_ok=True)
        #: tile id -> its window, for every tile finished (now or by an earlier run)
        self.windows: dict[str, Window] = {}
        #: ids of the finished tiles that hold data (the others are all nodata)
        self.stored: set[str] = set()
        self._read_ledger()
        self._ledger = open(self.ledger, "a", encoding="utf-8")  # noqa: SIM115
        if self._ledger.tell() and not self.ledger.read_bytes().endswith(b"\n"):
            self._ledger.write("\n")  # end a line torn by a kill: the next one stands alone

    def _read_ledger(self) -> None:
        if not self.ledger.exists():
            return
        text = self.ledger.read_text(encoding="utf-8")
        for line in text.splitlines(keepends=True):
            parts = line.split()
            if not line.endswith("\n") or len(parts) != 6:
                continue  # a line torn by a kill: that tile is not finished
            tile_id, col, row, width, height, stored = parts
            if stored == "1" and not _whole(self.path(tile_id)):
                continue
            self.windows[tile_id] = Window(int(col), int(row), int(width), int(height))
            if stored == "1":
                self.stored.add(tile_id)

    @property
    def done(self) -> frozenset[str]:
        """Ids of the finished tiles."""
        return frozenset(self.windows)

    def path(self, tile_id: str) -> Path:
        return self.tiles / f"{tile_id}.tif"

    def put(
        self,
        tile_id: str,
        window: Window,
        bands: np.ndarray | Sequence[np.ndarray],
        tags: dict[str, str] | None = None,
    ) -> bool:
        """Store a finished tile (``bands``: uint8 (n, h, w), or a sequence of such arrays,
        the file's bands in their order; ``tags``: metadata of its file, written with it) and
        record it in the ledger. A tile whose every value is nodata gets no file. Returns
        whether the tile got a file.

        Nothing as large as the tile is allocated (the driver writes hundreds of tiles while
        the models run: every fresh page of a temporary costs a fault in the kernel)."""
        layers = [bands] if isinstance(bands, np.ndarray) else list(bands)
        stored = any(_holds_data(a, self.nodata) for a in layers)
        if stored:
            n, (h, w) = sum(len(a) for a in layers), layers[0].shape[1:]
            tmp = self.tiles / f".{tile_id}.{os.getpid()}.tmp.tif"
            with rasterio.open(
                tmp, "w", driver="GTiff", width=w, height=h, count=n, dtype="uint8",
                nodata=self.nodata, crs=self._crs, transform=self.grid.window_transform(window),
                INTERLEAVE="BAND", TILED="YES", BLOCKXSIZE=_BLOCK, BLOCKYSIZE=_BLOCK,
            ) as dst:  # fmt: skip
                first = 1
                for a in layers:
                    dst.write(a, indexes=list(range(first, first + len(a))))
                    first += len(a)
                if tags:
                    dst.update_tags(**tags)
            _fsync(tmp)  # the data on disk before the name: a crash leaves no empty tile
            path = self.path(tile_id)
            os.replace(tmp, path)
            self.stored.add(tile_id)
            _remember(path, tags)
        win = Window(
            int(window.col_off), int(window.row_off), int(window.width), int(window.height)
        )
        self._ledger.write(
            f"{tile_id} {win.col_off} {win.row_off} {win.width} {win.height} {int(stored)}\n"
        )
        self._ledger.flush()
        os.fsync(self._ledger.fileno())  # survives the process being killed, and the machine
        self.windows[tile_id] = win
        return stored

    def close(self) -> None:
        self._ledger.close()


#: tags of the tile files this process wrote, by path, with the file's identity then: what
#: :func:`tile_tags` gives without opening the file again (a job's outputs read every tile's
#: tags once the tiles are done: 400 files opened took 0.5 s)
_WRITTEN: dict[str, tuple[tuple[int, ...], dict[str, str]]] = {}
_WRITTEN_LOCK = threading.Lock()
#: at most this many kept (the oldest go first): a long-lived process (``serve``) whose jobs
#: fail before their outputs are made does not keep their tiles' tags (jobs side by side
#: share the bound: past it, a tile's tags are read from its file again)
_WRITTEN_MAX = 20_000


def _identity(st: os.stat_result) -> tuple[int, ...]:
    # ctime too: unlike mtime it cannot be set back (cp -p, rsync)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _remember(path: Path, tags: dict[str, str] | None) -> None:
    with _WRITTEN_LOCK:
        while len(_WRITTEN) >= _WRITTEN_MAX:
            del _WRITTEN[next(iter(_WRITTEN))]
        # what GDAL reads back: the tags, and the pixel interpretation every GeoTIFF has
        _WRITTEN[os.fspath(path)] = (
            _identity(path.stat()),
            {"AREA_OR_POINT": "Area", **(tags or {})},
        )


def tile_tags(folder: str | os.PathLike[str], tile_id: str) -> dict[str, str] | None:
    """The metadata a finished tile's file was written with (in a store's ``folder``); None
    for a tile with no file (no valid pixel). A file this process wrote, unchanged since (same
    file, size and times), is not opened again."""
    path = Path(folder) / _TILES / f"{tile_id}.tif"
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = os.fspath(path)
    with _WRITTEN_LOCK:
        known = _WRITTEN.pop(key, None)  # read once: a job reads each tile's tags once
    if known is not None and known[0] == _identity(st):
        return dict(known[1])
    with rasterio.open(path) as src:
        return dict(src.tags())


def _holds_data(a: np.ndarray, nodata: int) -> bool:
    """Whether ``a`` holds a value other than ``nodata`` (two passes over it, no temporary)."""
    return a.size > 0 and (int(a.min()) != nodata or int(a.max()) != nodata)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _whole(path: Path) -> bool:
    """Whether a tile file is there and readable (not emptied by a crash)."""
    try:
        with rasterio.open(path) as src:
            return src.width > 0 and src.height > 0
    except (OSError, rasterio.errors.RasterioError):
        return False


@dataclass(frozen=True)
class BandSpec:
    """One band of a mosaic: which band of the tile files it takes, and how it reads."""

    source_band: int
    description: str
    scale: float | None = None
    colours: dict[int, tuple[int, int, int, int]] | None = None


def write_mosaic_vrt(
    path: str | os.PathLike[str],
    store: TileStore,
    grid: GeoBox,
    bands: Sequence[BandSpec],
    metadata: dict[str, str],
    flat: str | os.PathLike[str] | None = None,
) -> Path:
    """A VRT of ``grid`` assembling ``bands`` of the store's tiles (sorted by id: the same
    bytes whatever order the tiles finished in); where no tile holds data it reads nodata.

    With ``flat``, the VRT's bands are those of that one raster of the whole grid instead
    (its band ``i`` the VRT's band ``i``: the tiles' bands copied into it, see
    :class:`~pipeline.geo.rasters.RasterWriter`), with the same metadata.
    """
    path = Path(path)
    root = ET.Element("VRTDataset", rasterXSize=str(grid.width), rasterYSize=str(grid.height))
    ET.SubElement(root, "SRS").text = grid.crs.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(
        repr(float(v)) for v in grid.transform.to_gdal()
    )
    md = ET.SubElement(root, "Metadata")
    for key, value in metadata.items():
        ET.SubElement(md, "MDI", key=key).text = value
    nodata = str(store.nodata)
    for i, spec in enumerate(bands, start=1):
        band = ET.SubElement(root, "VRTRasterBand", dataType="Byte", band=str(i))
        ET.SubElement(band, "Description").text = spec.description
        ET.SubElement(band, "NoDataValue").text = nodata
        if spec.scale is not None:
            ET.SubElement(band, "Offset").text = "0"
            ET.SubElement(band, "Scale").text = repr(spec.scale)
        if spec.colours is not None:
            ET.SubElement(band, "ColorInterp").text = "Palette"
            table = ET.SubElement(band, "ColorTable")
            for index in range(256):
                r, g, b, a = spec.colours.get(index, (0, 0, 0, 255))
                ET.SubElement(table, "Entry", c1=str(r), c2=str(g), c3=str(b), c4=str(a))
        if flat is not None:
            whole = Window(0, 0, grid.width, grid.height)
            _source(band, os.path.relpath(flat, path.parent), i, whole, FLAT_BLOCK)
            continue
        for tile_id in sorted(store.stored):
            rel = os.path.relpath(store.path(tile_id), path.parent)
            _source(band, rel, spec.source_band, store.windows[tile_id], _BLOCK)
    ET.ElementTree(root).write(path, encoding="utf-8")
    return path


def _source(band: ET.Element, name: str, source_band: int, win: Window, block: int) -> None:
    """A VRT band's source: ``source_band`` of file ``name`` (relative to the VRT), whose
    pixels are those of ``win`` of the VRT's grid."""
    w, h = str(int(win.width)), str(int(win.height))
    src = ET.SubElement(band, "SimpleSource")
    ET.SubElement(src, "SourceFilename", relativeToVRT="1").text = name
    ET.SubElement(src, "SourceBand").text = str(source_band)
    ET.SubElement(
        src, "SourceProperties", RasterXSize=w, RasterYSize=h, DataType="Byte",
        BlockXSize=str(block), BlockYSize=str(block),
    )  # fmt: skip
    ET.SubElement(src, "SrcRect", xOff="0", yOff="0", xSize=w, ySize=h)
    ET.SubElement(
        src, "DstRect", xOff=str(int(win.col_off)), yOff=str(int(win.row_off)), xSize=w, ySize=h
    )
