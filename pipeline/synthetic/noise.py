"""Position-hashed noise: the same value for a pixel whichever block it is computed in.

Synthetic scenes are written block by block; every random quantity here is a pure function of
integer map-lattice coordinates and a seed, so blocks need no shared state and any block can be
recomputed alone.

The ``*_grid`` variants take the x of each column and the y of each row of a north-up block
and give exactly what the plain functions give for the full arrays of pixel coordinates, but
hash each lattice point once rather than once per pixel.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Cells",
    "fbm",
    "fbm_grid",
    "hash01",
    "value_noise",
    "value_noise_grid",
    "voronoi",
    "voronoi_grid",
]

_A = np.uint32(374761393)
_B = np.uint32(668265263)
_C1 = np.uint32(1274126177)
_C2 = np.uint32(2246822519)
_SCALE = np.float32(2.0**-32)


def _u32(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        a = a.astype(np.int64)
    return a.astype(np.uint32)  # wraps: the low 32 bits


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """A uniform [0, 1) float32 per integer lattice point (a 32-bit integer hash).

    ``ix`` and ``iy`` broadcast against each other (a row of x by a column of y hashes a grid).
    """
    with np.errstate(over="ignore"):
        h: np.ndarray = _u32(ix) * _A
        h = h + _u32(iy) * _B
        h += np.uint32(seed * 2654435761 & 0xFFFFFFFF)
        h ^= h >> np.uint32(13)
        h *= _C1
        h ^= h >> np.uint32(16)
        h *= _C2
        h ^= h >> np.uint32(13)
    out = h.astype(np.float32)
    out *= _SCALE  # exact: the same float32 as h / 2**32 rounded once
    return out


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def value_noise(x: np.ndarray, y: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1) with features about ``scale`` pixels apart."""
    fx, fy = x / scale, y / scale
    ix, iy = np.floor(fx), np.floor(fy)
    tx, ty = _smooth(fx - ix), _smooth(fy - iy)
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    a = hash01(ix, iy, seed)
    b = hash01(ix + 1, iy, seed)
    c = hash01(ix, iy + 1, seed)
    d = hash01(ix + 1, iy + 1, seed)
    return ((a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty).astype(np.float32)


def _lattice(v: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Cell of each coordinate relative to the first cell, position inside it, first cell."""
    f = v / scale
    i = np.floor(f)
    t = f - i
    ii = i.astype(np.int64)
    first = int(ii.min()) if ii.size else 0
    return ii - first, t, first


def value_noise_grid(xc: np.ndarray, yr: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """:func:`value_noise` of the grid of columns at x ``xc`` and rows at y ``yr``: (rows, cols)."""
    ix, tx, x0 = _lattice(xc, scale)
    iy, ty, y0 = _lattice(yr, scale)
    tx, ty = _smooth(tx), _smooth(ty)
    nx = int(ix.max()) + 2 if ix.size else 2
    ny = int(iy.max()) + 2 if iy.size else 2
    if nx * ny > xc.size * yr.size:  # pixels coarser than the lattice: hash per pixel
        return value_noise(xc[None, :], yr[:, None], scale, seed)
    table = hash01(np.arange(x0, x0 + nx)[None, :], np.arange(y0, y0 + ny)[:, None], seed)
    # interpolate along x on the lattice rows, then along y per pixel (same operations, order
    # and dtypes as value_noise, so the same values)
    across = table[:, ix] * (1 - tx) + table[:, ix + 1] * tx
    out = np.take(across, iy, axis=0)
    out *= (1 - ty)[:, None]
    upper = np.take(across, iy + 1, axis=0)
    upper *= ty[:, None]
    out += upper
    return out.astype(np.float32)


def fbm(x: np.ndarray, y: np.ndarray, scale: float, seed: int, octaves: int = 3) -> np.ndarray:
    """Fractal sum of value noise, roughly in [0, 1)."""
    total = np.zeros(np.broadcast(x, y).shape, np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total += amp * value_noise(x, y, scale / 2**k, seed + 101 * k)
        norm += amp
        amp *= 0.5
    return total / norm


def fbm_grid(
    xc: np.ndarray, yr: np.ndarray, scale: float, seed: int, octaves: int = 3
) -> np.ndarray:
    """:func:`fbm` of the grid of columns at x ``xc`` and rows at y ``yr``."""
    total = np.zeros((yr.size, xc.size), np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total += amp * value_noise_grid(xc, yr, scale / 2**k, seed + 101 * k)
        norm += amp
        amp *= 0.5
    return total / norm


def voronoi(
    x: np.ndarray, y: np.ndarray, cell: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Jittered-grid Voronoi cells of about ``cell`` pixels.

    Returns:
        (cell_x, cell_y, d1, d2): lattice index of the nearest seed, the distance to it and the
        distance to the second nearest (``d2 - d1`` is small along cell borders).
    """
    gx, gy = np.floor(x / cell).astype(np.int64), np.floor(y / cell).astype(np.int64)
    shape = np.broadcast(x, y).shape
    d1 = np.full(shape, np.inf, np.float32)
    d2 = np.full(shape, np.inf, np.float32)
    best_x = np.zeros(shape, np.int64)
    best_y = np.zeros(shape, np.int64)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            cx, cy = gx + ox, gy + oy
            sx = (cx + 0.1 + 0.8 * hash01(cx, cy, seed)) * cell
            sy = (cy + 0.1 + 0.8 * hash01(cx, cy, seed + 7)) * cell
            d = np.hypot(x - sx, y - sy).astype(np.float32)
            closer = d < d1
            d2 = np.where(closer, d1, np.minimum(d2, d))
            d1 = np.where(closer, d, d1)
            best_x = np.where(closer, cx, best_x)
            best_y = np.where(closer, cy, best_y)
    return best_x, best_y, d1, d2


@dataclass(frozen=True)
class Cells:
    """Voronoi cells of a grid block: each pixel's cell and its distances to the two nearest
    seeds. Cells are numbered on a small lattice, so per-cell values are hashed once a cell."""

    index: np.ndarray  #: (rows, cols) number of each pixel's cell
    lx: np.ndarray  #: lattice x of each cell number
    ly: np.ndarray  #: lattice y of each cell number
    d1: np.ndarray  #: (rows, cols) distance to the nearest seed
    d2: np.ndarray  #: (rows, cols) distance to the second nearest

    def hash(self, seed: int) -> np.ndarray:
        """hash01 of the cell's lattice point, per cell number (index it with ``index``)."""
        return hash01(self.lx, self.ly, seed)


_LOW29 = np.uint64(2**29 - 1)  # the float64 mantissa bits below float32's
_NEAR = 64  # float64 ulps: far more than sqrt(dx² + dy²) and hypot can differ by


def _distance32(dx: np.ndarray, dy: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``np.hypot(dx, dy).astype(np.float32)`` (``dx`` a row, ``dy`` a block, ``s`` a buffer
    shaped like ``dy``), three times as fast.

    ``sqrt(dx² + dy²)`` is within a few float64 ulps of ``hypot``, so both round to the same
    float32 unless they lie next to a float32 rounding midpoint: those few are redone.
    """
    np.multiply(dy, dy, out=s)
    s += dx * dx
    np.sqrt(s, out=s)
    out = s.astype(np.float32)
    low = s.view(np.uint64)
    low &= _LOW29
    low -= np.uint64(2**28 - _NEAR)  # wraps: small only near the midpoint 2**28
    near = np.flatnonzero(low < np.uint64(2 * _NEAR))
    if near.size:
        hx = np.broadcast_to(dx, dy.shape).ravel()[near]
        out.ravel()[near] = np.hypot(hx, dy.ravel()[near])
    return out


def voronoi_grid(xc: np.ndarray, yr: np.ndarray, cell: float, seed: int) -> Cells:
    """:func:`voronoi` of the grid of columns at x ``xc`` and rows at y ``yr``."""
    gx, _, x0 = _lattice(xc, cell)
    gy, _, y0 = _lattice(yr, cell)
    # lattice cells x0-1 .. x0+max+1 (and likewise in y): every neighbour of a pixel's cell
    nx, ny = int(gx.max()) + 3, int(gy.max()) + 3
    lx = np.arange(x0 - 1, x0 - 1 + nx, dtype=np.int64)[None, :].repeat(ny, 0)
    ly = np.arange(y0 - 1, y0 - 1 + ny, dtype=np.int64)[:, None].repeat(nx, 1)
    sx = (lx + 0.1 + 0.8 * hash01(lx, ly, seed)) * cell
    sy = (ly + 0.1 + 0.8 * hash01(lx, ly, seed + 7)) * cell
    shape = (yr.size, xc.size)
    d1 = np.full(shape, np.inf, np.float32)
    d2 = np.full(shape, np.inf, np.float32)
    best = np.zeros(shape, np.uint8)
    offsets = [(oy, ox) for oy in (-1, 0, 1) for ox in (-1, 0, 1)]
    # bands of rows in one lattice row: there a seed's x and y depend on the column only
    cuts = [0, *(np.flatnonzero(np.diff(gy)) + 1).tolist(), yr.size]
    for r0, r1 in itertools.pairwise(cuts):
        band = (r1 - r0, xc.size)
        dy, s = np.empty(band), np.empty(band)
        closer, larger, step = (
            np.empty(band, bool),
            np.empty(band, np.float32),
            np.empty(band, np.uint8),
        )
        b1, b2, bb = d1[r0:r1], d2[r0:r1], best[r0:r1]
        for k, (oy, ox) in enumerate(offsets):
            row, cols = gy[r0] + 1 + oy, gx + 1 + ox
            dx = xc - sx[row, cols]
            np.subtract(yr[r0:r1, None], sy[row, cols][None, :], out=dy)
            d = _distance32(dx, dy, s)
            # b1 stays the first strict minimum, b2 the next value (as in voronoi)
            np.less(d, b1, out=closer)
            np.maximum(b1, d, out=larger)
            np.minimum(b2, larger, out=b2)
            np.minimum(b1, d, out=b1)
            np.subtract(np.uint8(k), bb, out=step)  # bb = k where closer (uint8 wraps)
            step *= closer
            bb += step
    # cell number of the winner: the pixel's own cell shifted by the winning offset
    shift = np.array([oy * nx + ox for oy, ox in offsets], np.intp)
    index = ((gy + 1) * nx)[:, None] + (gx + 1)[None, :]
    index = index + shift[best]
    return Cells(index, lx.ravel(), ly.ravel(), d1, d2)
