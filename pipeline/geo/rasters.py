"""Streaming tile cores into GeoTIFFs, then converting them to Cloud-Optimized GeoTIFFs."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from .grid import GeoBox
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
    "work_rasters",
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


def work_rasters(folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The working (non-COG) probability and mask rasters of a staging folder: what
    vectorizing reads, removed when the job is published."""
    work = Path(folder) / "work"
    return work / PROBABILITIES_FILE, work / MASK_FILE


class RasterWriter:
    """The single writer of a job's rasters.

    Cores are written at their windows into tiled, compressed working GeoTIFFs as they arrive (in
    any order); :meth:`finish` converts them to COGs with overviews. Memory is one tile.

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
        self.work_probabilities, self.work_mask = work_rasters(self.folder)
        self.work_saliency = self.work_mask.with_name(SALIENCY_FILE)
        self._prob: rasterio.io.DatasetWriter | None = None
        self._mask: rasterio.io.DatasetWriter | None = None
        self._saliency: rasterio.io.DatasetWriter | None = None
        self.written = 0

    def _profile(self, count: int) -> dict[str, object]:
        return {
            "driver": "GTiff",
            "width": self.grid.width,
            "height": self.grid.height,
            "count": count,
            "dtype": "uint8",
            "crs": self.grid.crs.to_wkt(),
            "transform": self.grid.transform,
            "nodata": NODATA,
            "tiled": True,
            "blockxsize": _BLOCK,
            "blockysize": _BLOCK,
            "compress": "deflate",
            "BIGTIFF": "IF_SAFER",
            "SPARSE_OK": "TRUE",
        }

    def __enter__(self) -> RasterWriter:
        self.work_probabilities.parent.mkdir(parents=True, exist_ok=True)
        n_fg = len(self.classes) - 1
        self._prob = rasterio.open(self.work_probabilities, "w", **self._profile(n_fg))
        self._mask = rasterio.open(self.work_mask, "w", **self._profile(1))
        for band, name in enumerate(self.classes[1:], start=1):
            self._prob.set_band_description(band, f"p({name})")
        self._prob.scales = (1 / SCALE,) * n_fg
        self._prob.offsets = (0.0,) * n_fg
        self._mask.set_band_description(1, "class")
        colours = dict(enumerate(class_colours(len(self.classes))))
        colours[NODATA] = (0, 0, 0, 0)
        self._mask.write_colormap(1, colours)
        if self.saliency is not None:
            self._saliency = rasterio.open(self.work_saliency, "w", **self._profile(1))
            self._saliency.set_band_description(1, f"Grad-CAM({self.saliency})")
            self._saliency.scales = (1 / SCALE,)
            self._saliency.offsets = (0.0,)
        return self

    def write(
        self,
        window: Window,
        probabilities: np.ndarray,
        mask: np.ndarray,
        saliency: np.ndarray | None = None,
    ) -> None:
        """Write one window: ``probabilities`` (bands, h, w), ``mask`` (h, w) and, when the
        writer was made with ``saliency``, ``saliency`` (h, w); uint8."""
        assert self._prob is not None and self._mask is not None, "use RasterWriter as a context"
        if self._saliency is not None:
            if saliency is None:
                raise ValueError("this writer writes saliency.tif: give every window's saliency")
            self._saliency.write(saliency, window=window, indexes=1)
        self._prob.write(probabilities, window=window)
        self._mask.write(mask, window=window, indexes=1)
        self.written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for ds in (self._prob, self._mask, self._saliency):
            if ds is not None:
                ds.close()
        self._prob = self._mask = self._saliency = None

    def finish(self) -> tuple[Path, Path]:
        """Convert the working rasters into COGs in the staging folder and write their QGIS
        styles beside them; returns the COGs' paths."""
        classes = ",".join(self.classes)
        probabilities = self.folder / PROBABILITIES_FILE
        mask = self.folder / MASK_FILE
        nodata = "no valid imagery or outside AOI"
        _to_cog(
            self.work_probabilities,
            probabilities,
            Resampling.average,
            {"CLASSES": classes, "NODATA_MEANING": nodata},
        )
        categories = ",".join(f"{i}={name}" for i, name in enumerate(self.classes))
        _to_cog(
            self.work_mask,
            mask,
            Resampling.nearest,
            # category names as metadata too: GTiff keeps GDAL category names only in .aux.xml
            {"CLASSES": classes, "CATEGORIES": categories, "NODATA_MEANING": nodata},
        )
        write_qml(self.folder / PROBABILITIES_STYLE, probabilities_qml(self.threshold))
        write_qml(self.folder / MASK_STYLE, mask_qml(self.classes))
        if self.saliency is not None:
            _to_cog(
                self.work_saliency,
                self.folder / SALIENCY_FILE,
                Resampling.average,
                {"CLASSES": classes, "NODATA_MEANING": nodata},
            )
            write_qml(self.folder / SALIENCY_STYLE, saliency_qml())
        return probabilities, mask


def _to_cog(src_path: Path, dst_path: Path, resampling: Resampling, tags: dict[str, str]) -> None:
    with rasterio.open(src_path, "r+") as src:
        src.update_tags(**tags)
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
        NUM_THREADS="ALL_CPUS",
    )
