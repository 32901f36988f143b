"""Streaming tile cores into GeoTIFFs, then converting them to Cloud-Optimized GeoTIFFs."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from .grid import GeoBox
from .mosaic import FLAT_BLOCK, BandSpec, TileStore, tile_tags, write_mosaic_vrt
from .styles import class_colours, mask_qml, probabilities_qml, saliency_qml, write_qml

__all__ = [
    "MASK_FILE",
    "MASK_STYLE",
    "NODATA",
    "PROBABILITIES_FILE",
    "PROBABILITIES_STYLE",
    "SALIENCY_FILE",
    "SALIENCY_STYLE",
    "SCALE",
    "RasterWriter",
    "tile_metadata",
    "work_rasters",
    "write_cogs",
]

#: nodata value of the uint8 output rasters.
NODATA = 255
#: probabilities are stored as round(p * SCALE), 0..254; the band's GDAL scale is 1 / SCALE, so
#: GDAL, rasterio (``scales``) and QGIS read probabilities 0..1.
SCALE = 254

PROBABILITIES_FILE = "probabilities.tif"
MASK_FILE = "mask.tif"
SALIENCY_FILE = "saliency.tif"
#: QGIS styles beside the rasters (QGIS loads NAME.qml with NAME.tif).
PROBABILITIES_STYLE = "probabilities.qml"
MASK_STYLE = "mask.qml"
SALIENCY_STYLE = "saliency.qml"
_BLOCK = 512
#: the staging folder's subfolder of working files (tiles, ledger, VRT mosaics)
WORK = "work"
_SALIENCY_VRT = "saliency.vrt"


def tile_metadata(folder: str | os.PathLike[str], tile_id: str) -> dict[str, str] | None:
    """The tags a finished tile of a staging folder was written with; None for a tile with
    no valid pixel (it has no file)."""
    return tile_tags(Path(folder) / WORK, tile_id)


def work_rasters(folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The working probability and mask rasters of a staging folder (VRT mosaics of the
    finished tiles): what vectorizing reads, removed when the job is published."""
    work = Path(folder) / WORK
    return work / "probabilities.vrt", work / "mask.vrt"


class RasterWriter:
    """The single writer of a job's rasters.

    Each tile's core goes to its own small uncompressed GeoTIFF as it arrives (in any order),
    and its id to the ledger (:class:`~pipeline.geo.mosaic.TileStore`): a killed job keeps its
    finished tiles, and a writer opened on the same folder again knows them (:attr:`done`).
    Each core is also copied, as it arrives, into uncompressed tiled rasters of the whole grid
    (``work/*.flat.tif``, sparse: blocks no tile reached read nodata), which the COGs are made
    from: GDAL computes their overviews twice as fast from one file as from a VRT of hundreds,
    and the copy is done while the model runs instead of after it. They cost about one byte per
    grid pixel and band in ``work/`` (beside the tile files, which resume needs) until the job
    is published and ``work/`` removed.
    :meth:`assemble` presents the tiles as VRT mosaics, :func:`write_cogs` converts those to COGs
    with overviews (:meth:`finish` does both): compression happens once, after the model has
    run. Memory is one tile (and GDAL's block cache).

    The probabilities (and the optional saliency) carry a GDAL scale of 1/254 (values read
    0..1), the mask a colour table; the COGs embed their statistics (opening them writes no
    ``.aux.xml``), and each gets a QGIS style beside it: the probabilities transparent below
    ``threshold``, the mask's class names, the saliency as a heat ramp.

    Args:
        folder: the job's staging folder.
        grid: the output grid.
        classes: class names, index 0 the background.
        threshold: the detection threshold (where the probability style starts).
        saliency: the class whose Grad-CAM ``saliency.tif`` holds (every :meth:`write` then
            gives one); None: no ``saliency.tif``.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        grid: GeoBox,
        classes: list[str],
        threshold: float = 0.5,
        saliency: str | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.grid = grid
        self.classes = classes
        self.threshold = threshold
        self.saliency = saliency
        self.work = self.folder / WORK
        self._store: TileStore | None = None
        self.written = 0
        #: the rasters of the whole grid the tiles are copied into as they arrive, and the
        #: ids of the tiles copied (see :meth:`assemble`)
        self._flats: list[rasterio.io.DatasetWriter] = []
        self._in_flats: set[str] = set()

    @property
    def done(self) -> frozenset[str]:
        """Ids of the tiles already finished in this folder (by this or an earlier run)."""
        assert self._store is not None, "use RasterWriter as a context"
        return self._store.done

    def __enter__(self) -> RasterWriter:
        self._store = TileStore(self.work, self.grid, NODATA)
        self._in_flats = set()
        try:
            self._open_flats("w")  # afresh: an earlier run's tiles are copied in by assemble
        except BaseException:
            self._close_flats()
            self._store.close()
            raise
        return self

    def _open_flats(self, mode: str) -> None:
        """Open the whole-grid rasters: created (``"w"``) or, once closed, updated (``"r+"``)."""
        counts = [len(self.classes) - 1, 1] + ([1] if self.saliency is not None else [])
        for path, count in zip(_flat_paths(self.folder), counts, strict=False):
            if mode == "r+" and path.exists():
                self._flats.append(rasterio.open(path, "r+"))
                continue
            self._flats.append(
                rasterio.open(
                    path,
                    "w",
                    driver="GTiff",
                    width=self.grid.width,
                    height=self.grid.height,
                    count=count,
                    dtype="uint8",
                    nodata=NODATA,
                    crs=self.grid.crs.to_wkt(),
                    transform=self.grid.transform,
                    TILED="YES",
                    BLOCKXSIZE=FLAT_BLOCK,
                    BLOCKYSIZE=FLAT_BLOCK,
                    SPARSE_OK="TRUE",
                    BIGTIFF="IF_SAFER",
                )
            )

    def _copy(self, tile_id: str, window: Window, layers: list[np.ndarray]) -> None:
        """A stored tile's layers (probabilities, mask[, saliency]) into the whole-grid rasters
        (opened again if :meth:`assemble` closed them)."""
        if not self._flats:
            self._open_flats("r+")
        for dst, layer in zip(self._flats, layers, strict=True):
            dst.write(layer, window=window)
        self._in_flats.add(tile_id)

    def write(
        self,
        tile_id: str,
        window: Window,
        probabilities: np.ndarray,
        mask: np.ndarray,
        saliency: np.ndarray | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Write one tile's core at ``window``: ``probabilities`` (bands, h, w), ``mask``
        (h, w) and, when the writer was made with ``saliency``, ``saliency`` (h, w); uint8.
        ``tags`` go into the tile's file (see :func:`tile_metadata`)."""
        assert self._store is not None, "use RasterWriter as a context"
        layers = [probabilities, mask[None]]
        if self.saliency is not None:
            if saliency is None:
                raise ValueError("this writer writes saliency.tif: give every window's saliency")
            layers.append(saliency[None])
        layers = [a.astype(np.uint8, copy=False) for a in layers]
        if self._store.put(tile_id, window, layers, tags):
            self._copy(tile_id, window, layers)
        self.written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._close_flats()
        finally:
            if self._store is not None:
                self._store.close()

    def _close_flats(self) -> None:
        """Close the whole-grid rasters (all of them, even when closing one fails)."""
        error: BaseException | None = None
        while self._flats:
            try:
                self._flats.pop().close()
            except BaseException as exc:  # e.g. the disk full while flushing: said once all are
                error = error or exc
        if error is not None:
            raise error

    def finish(self) -> tuple[Path, Path]:
        """:meth:`assemble`, then :func:`write_cogs`; returns the COGs' paths."""
        self.assemble()
        return write_cogs(self.folder, self.classes, self.threshold, self.saliency is not None)

    def assemble(self) -> None:
        """Assemble the finished tiles into the working VRT mosaics (:func:`work_rasters`, and
        ``saliency.vrt``): what vectorizing and :func:`write_cogs` read. Their pixels are
        those of the whole-grid rasters; the tiles an earlier run finished are copied into
        those first (from their files: a resumed run opens them anew), the only pixels this
        copies."""
        assert self._store is not None, "use RasterWriter as a context"
        store = self._store
        # the tiles an earlier run finished (or any the rasters missed): copied in from their
        # files; then the rasters are closed, complete, for the VRTs to read
        n_fg = len(self.classes) - 1
        for tile_id in sorted(store.stored - self._in_flats):
            with rasterio.open(store.path(tile_id)) as src:
                bands = src.read()
            layers = [bands[:n_fg], bands[n_fg : n_fg + 1]]
            if self.saliency is not None:
                layers.append(bands[n_fg + 1 : n_fg + 2])
            self._copy(tile_id, store.windows[tile_id], layers)
        self._close_flats()
        flats = _flat_paths(self.folder)
        classes = ",".join(self.classes)
        nodata = "no valid imagery or outside AOI"
        work_probabilities, work_mask = work_rasters(self.folder)
        write_mosaic_vrt(
            work_probabilities,
            store,
            self.grid,
            [BandSpec(b, f"p({name})", 1 / SCALE) for b, name in enumerate(self.classes[1:], 1)],
            {"CLASSES": classes, "NODATA_MEANING": nodata},
            flats[0],
        )
        colours = dict(enumerate(class_colours(len(self.classes))))
        colours[NODATA] = (0, 0, 0, 0)
        categories = ",".join(f"{i}={name}" for i, name in enumerate(self.classes))
        write_mosaic_vrt(
            work_mask,
            store,
            self.grid,
            [BandSpec(n_fg + 1, "class", colours=colours)],
            # category names as metadata too: GTiff keeps GDAL category names only in .aux.xml
            {"CLASSES": classes, "CATEGORIES": categories, "NODATA_MEANING": nodata},
            flats[1],
        )
        if self.saliency is not None:
            write_mosaic_vrt(
                self.work / _SALIENCY_VRT,
                store,
                self.grid,
                [BandSpec(n_fg + 2, f"Grad-CAM({self.saliency})", 1 / SCALE)],
                {"CLASSES": classes, "NODATA_MEANING": nodata},
                flats[2],
            )


def write_cogs(
    folder: str | os.PathLike[str],
    classes: list[str],
    threshold: float = 0.5,
    saliency: bool = False,
) -> tuple[Path, Path]:
    """Convert the working mosaics of a staging folder (:meth:`RasterWriter.assemble`) into
    the COGs beside them, with their QGIS styles; returns the probability and mask COGs.

    GDAL does the work with the GIL released: it can run in a thread beside vectorizing.
    """
    folder = Path(folder)
    work_probabilities, work_mask = work_rasters(folder)
    probabilities = folder / PROBABILITIES_FILE
    mask = folder / MASK_FILE
    conversions = [
        (work_probabilities, probabilities, Resampling.average),
        (work_mask, mask, Resampling.nearest),
    ]
    if saliency:
        conversions.append(
            (folder / WORK / _SALIENCY_VRT, folder / SALIENCY_FILE, Resampling.average)
        )
    # one thread per raster, each converting with its share of the cores: GDAL's own threads
    # (NUM_THREADS) only compress, and cost a third more CPU than one thread does (measured at
    # 400 Mpx: 7.3 against 5.5 CPU-s), CPU the sites' extraction beside it wants
    threads = _cog_threads(len(conversions) + 1)
    with ThreadPoolExecutor(len(conversions), thread_name_prefix="wastewatch-cog") as pool:
        done = [pool.submit(_to_cog, *c, threads) for c in conversions]
        for future in done:
            future.result()
    write_qml(folder / PROBABILITIES_STYLE, probabilities_qml(threshold))
    write_qml(folder / MASK_STYLE, mask_qml(classes))
    if saliency:
        write_qml(folder / SALIENCY_STYLE, saliency_qml())
    return probabilities, mask


def _cog_threads(busy: int) -> int:
    """GDAL threads for each of ``busy`` conversions running at once (this process's cores
    shared out; 1 when there are no more cores than conversions)."""
    return max(1, len(os.sched_getaffinity(0)) // busy)


def _to_cog(src_path: Path, dst_path: Path, resampling: Resampling, threads: int = 1) -> None:
    """A COG with overviews of a working VRT (the band metadata; its pixels those of a
    whole-grid uncompressed GeoTIFF, :meth:`RasterWriter.assemble`): GDAL computes the overviews
    from that twice as fast as from a VRT of hundreds of tile files, and the tiles were copied
    into it as they came (measured at 400 Mpx: 1.7 s and 2.5 CPU-s per raster once the tiles
    are done, were they copied then)."""
    rasterio.shutil.copy(
        src_path,
        dst_path,
        driver="COG",
        COMPRESS="DEFLATE",
        BLOCKSIZE=_BLOCK,
        OVERVIEW_RESAMPLING=resampling.name.upper(),
        # statistics in the file: GDAL and QGIS read them instead of computing and caching
        # them in an .aux.xml beside the COG
        STATISTICS="YES",
        BIGTIFF="IF_SAFER",
        NUM_THREADS=str(threads),
    )


def _flat_paths(folder: str | os.PathLike[str]) -> list[Path]:
    """The whole-grid rasters of a staging folder's tiles: probabilities, mask, saliency."""
    work = Path(folder) / WORK
    return [work / f"{name}.flat.tif" for name in ("probabilities", "mask", "saliency")]
