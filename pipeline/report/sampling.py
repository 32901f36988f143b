"""Decimated pictures of rasters: the lattice of samples a picture is made of, and reading
them (only those nobody holds yet) from a scene without overviews."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import MaskFlags, Resampling

__all__ = ["SampleLattice", "Samples", "picture_window", "read_rgb", "sample_lattice"]

#: source rows of a strip of the scene read for a picture, at most twice this
_STRIP_ROWS = 512
#: pixels of bands 1-3 read at once for a picture, at most about this (bytes)
_READ_BYTES = 32 << 20


@dataclass(frozen=True)
class SampleLattice:
    """The pixels a decimated picture is made of: sample ``(u, v)`` is the raster pixel
    ``(row0 + floor((u + 0.5) * step_y), col0 + floor((v + 0.5) * step_x))``, for ``u`` below
    ``rows`` and ``v`` below ``cols``; picture pixel ``(i, j)`` averages the valid samples
    ``(2i + a, 2j + b)``, ``a, b`` in {0, 1}.

    Whoever holds some of those pixels (a job's tile, in the grid's pixels: :meth:`shifted`)
    can take their samples (:meth:`take`); the picture then reads only the rest.
    """

    row0: int
    col0: int
    step_y: float
    step_x: float
    rows: int
    cols: int

    def pixel_rows(self) -> np.ndarray:
        return self.row0 + np.floor((np.arange(self.rows) + 0.5) * self.step_y).astype(np.int64)

    def pixel_cols(self) -> np.ndarray:
        return self.col0 + np.floor((np.arange(self.cols) + 0.5) * self.step_x).astype(np.int64)

    def shifted(self, rows: int, cols: int) -> SampleLattice:
        """The same samples in a raster whose pixel (0, 0) is this one's (``rows``, ``cols``)."""
        return SampleLattice(
            self.row0 - rows, self.col0 - cols, self.step_y, self.step_x, self.rows, self.cols
        )

    def take(
        self,
        window: rasterio.windows.Window,
        data: np.ndarray,
        valid: np.ndarray,
        origin: tuple[int, int],
    ) -> Samples | None:
        """The samples inside ``window`` (raster pixels) from ``data`` (bands >= 3, h, w) and
        ``valid`` (h, w), arrays whose first pixel is the raster's ``origin`` (row, col);
        None when no sample falls inside."""
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = r0 + int(window.height), c0 + int(window.width)
        rows, cols = self.pixel_rows(), self.pixel_cols()
        us = np.flatnonzero((rows >= r0) & (rows < r1))
        vs = np.flatnonzero((cols >= c0) & (cols < c1))
        if not len(us) or not len(vs):
            return None
        rr, cc = rows[us] - origin[0], cols[vs] - origin[1]
        rgb = np.clip(data[:3][:, rr][:, :, cc], 0, 255).astype(np.uint8)
        return Samples(int(us[0]), int(vs[0]), rgb, valid[rr][:, cc])


@dataclass
class Samples:
    """A rectangle of a :class:`SampleLattice`'s samples: ``rgb`` (3, n, m) uint8 and
    ``valid`` (n, m) of samples ``(u0 + i, v0 + j)``."""

    u0: int
    v0: int
    rgb: np.ndarray
    valid: np.ndarray

    def encode(self) -> str:
        """As text (a tag value): offsets, shape, then the arrays zlib-compressed, base64."""
        n, m = self.valid.shape
        # level 1: imagery hardly compresses (to about 0.87 at any level), and this runs for
        # every tile while its model waits
        raw = zlib.compress(self.rgb.tobytes() + np.packbits(self.valid).tobytes(), 1)
        return f"{self.u0},{self.v0},{n},{m}," + base64.b64encode(raw).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Samples:
        u0, v0, n, m, body = text.split(",", 4)
        raw = zlib.decompress(base64.b64decode(body))
        k = 3 * int(n) * int(m)
        rgb = np.frombuffer(raw[:k], np.uint8).reshape(3, int(n), int(m)).copy()
        bits = np.unpackbits(np.frombuffer(raw[k:], np.uint8))[: int(n) * int(m)]
        return cls(int(u0), int(v0), rgb, bits.reshape(int(n), int(m)).astype(bool))


def picture_window(
    src: rasterio.io.DatasetReader,
    bounds: tuple[float, float, float, float] | None,
    max_size: int,
) -> tuple[rasterio.windows.Window | None, tuple[int, int]]:
    """The window of ``src`` a picture of ``bounds`` (None: the whole raster) reads, and the
    picture's (h, w), its longest side at most ``max_size``."""
    window = None
    if bounds is not None:
        window = (
            rasterio.windows.from_bounds(*bounds, transform=src.transform)
            .round_offsets()
            .round_lengths()
        )
    width = window.width if window is not None else src.width
    height = window.height if window is not None else src.height
    scale = max(1.0, max(width, height) / max_size)
    return window, (max(1, round(height / scale)), max(1, round(width / scale)))


def sample_lattice(
    src: rasterio.io.DatasetReader,
    window: rasterio.windows.Window | None,
    shape: tuple[int, int],
) -> SampleLattice | None:
    """The samples :func:`read_rgb` makes the picture ``shape`` of ``window`` from, or None
    when it reads it otherwise (from overviews, averaged, or boundless)."""
    whole = rasterio.windows.Window(0, 0, src.width, src.height)
    win = window or whole
    boundless = window is not None and win.intersection(whole) != win
    factor = max(win.width / shape[1], win.height / shape[0])
    if factor <= 4 or boundless or src.overviews(1):
        return None
    h, w = 2 * shape[0], 2 * shape[1]
    return SampleLattice(int(win.row_off), int(win.col_off), win.height / h, win.width / w, h, w)


def read_rgb(
    src: rasterio.io.DatasetReader,
    window: rasterio.windows.Window | None,
    shape: tuple[int, int],
    known: list[Samples] | None = None,
) -> tuple[np.ndarray, Affine]:
    """Bands 1-3 of ``window`` (whole dataset if None) resampled to ``shape`` (h, w), nodata
    white; returns the (h, w, 3) array and the picture's geotransform.

    A scene with overviews is read from the one that fits (GDAL picks it). One without, read
    more than 4 times decimated, is sampled at twice the picture's size and averaged 2 x 2 (an
    average over every source pixel costs as much as the job's own reading, for a picture no
    one can tell from this: see :func:`sample_lattice`), in strips of whole block rows decoded
    on all cores; samples ``known`` already (a job's tiles took them) are not read again.
    """
    whole = rasterio.windows.Window(0, 0, src.width, src.height)
    win = window or whole
    # a boundless read goes through a VRT that reads every source pixel: only when it must
    boundless = window is not None and win.intersection(whole) != win
    lattice = sample_lattice(src, window, shape)
    if lattice is not None:
        data, valid = _sample(src, lattice, known or [])
        h, w = shape
        n = valid.reshape(h, 2, w, 2).sum(axis=(1, 3))
        total = (data.astype(np.uint32) * valid).reshape(3, h, 2, w, 2).sum(axis=(2, 4))
        data = np.where(n > 0, (total + n // 2) // np.maximum(n, 1), 255)
        valid = n > 0
    else:
        data = src.read(
            indexes=[1, 2, 3],
            window=win,
            out_shape=(3, *shape),
            resampling=Resampling.average,
            boundless=boundless,
            fill_value=255,
        )
        valid = src.dataset_mask(window=win, out_shape=shape, boundless=boundless) > 0
    base = src.window_transform(win)
    transform = base * Affine.scale(win.width / shape[1], win.height / shape[0])
    rgb = np.where(valid[None], data, 255).astype(np.uint8).transpose(1, 2, 0).copy()
    return rgb, transform


def _sample(
    src: rasterio.io.DatasetReader, lattice: SampleLattice, known: list[Samples]
) -> tuple[np.ndarray, np.ndarray]:
    """Bands 1-3 and the validity of ``lattice``'s samples: those ``known`` as they are, the
    others read strip by strip (each strip's blocks decoded once, whatever the size of GDAL's
    block cache), only the columns of a strip that hold samples still missing."""
    h, w = lattice.rows, lattice.cols
    data = np.full((3, h, w), 255, np.uint8)
    valid = np.zeros((h, w), bool)
    have = np.zeros((h, w), bool)
    for k in known:
        n, m = k.valid.shape
        data[:, k.u0 : k.u0 + n, k.v0 : k.v0 + m] = k.rgb
        valid[k.u0 : k.u0 + n, k.v0 : k.v0 + m] = k.valid
        have[k.u0 : k.u0 + n, k.v0 : k.v0 + m] = True
    if have.all():
        return data, valid
    rows, cols = lattice.pixel_rows(), lattice.pixel_cols()
    block_h, block_w = src.block_shapes[0]
    # strips of whole block rows (at most _STRIP_ROWS tall: a scene stored as one strip is
    # not read whole), each read in chunks of whole block columns of at most _READ_BYTES
    unit = max(1, min(block_h, _STRIP_ROWS))
    nodata = all(MaskFlags.nodata in flags for flags in src.mask_flag_enums[:3])
    every = all(flags == [MaskFlags.all_valid] for flags in src.mask_flag_enums[:3])
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        o0 = 0
        while o0 < h:
            top = int(rows[o0]) // unit * unit
            o1 = max(int(np.searchsorted(rows, top + 2 * unit, side="left")), o0 + 1)
            for (a, b), (v0, v1) in _missing_rectangles(~have[o0:o1]):
                a, b = a + o0, b + o0
                r0, r1 = int(rows[a]), int(rows[b - 1]) + 1
                span = max(block_w, _READ_BYTES // (3 * (r1 - r0)) // block_w * block_w)
                while v0 < v1:
                    c0 = int(cols[v0])
                    end = int(np.searchsorted(cols, (c0 // span + 1) * span, side="left"))
                    end = min(max(end, v0 + 1), v1)
                    c1 = int(cols[end - 1]) + 1
                    part_win = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
                    part = src.read(indexes=[1, 2, 3], window=part_win)
                    rr, cc = rows[a:b] - r0, cols[v0:end] - c0
                    got = part[:, rr][:, :, cc]
                    if nodata:  # GDAL's nodata mask, from the samples themselves
                        ok = (got != src.nodata).any(axis=0)
                    elif every:
                        ok = np.ones(got.shape[1:], bool)
                    else:
                        ok = (src.dataset_mask(window=part_win) > 0)[rr][:, cc]
                    data[:, a:b, v0:end] = got
                    valid[a:b, v0:end] = ok
                    v0 = end
            o0 = o1
    return data, valid


def _missing_rectangles(
    missing: np.ndarray,
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Rectangles ``((row0, row1), (col0, col1))`` that cover exactly the True cells of a 2-d
    array: consecutive rows alike make one band, each run of True in it one rectangle (the
    margin above a picture is one wide rectangle, the margins beside it two narrow ones)."""
    out: list[tuple[tuple[int, int], tuple[int, int]]] = []
    a = 0
    while a < len(missing):
        b = a + 1
        while b < len(missing) and np.array_equal(missing[b], missing[a]):
            b += 1
        out.extend(((a, b), run) for run in _runs(missing[a]))
        a = b
    return out


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) runs of True in a 1-d boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
