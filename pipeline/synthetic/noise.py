"""Position-hashed noise: the same value for a pixel whichever block it is computed in.

Synthetic scenes are written block by block; every random quantity here is a pure function of
integer map-lattice coordinates and a seed, so blocks need no shared state and any block can be
recomputed alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fbm", "hash01", "value_noise", "voronoi"]

_M = np.uint64(0xFFFFFFFF)


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """A uniform [0, 1) float32 per integer lattice point (a 32-bit integer hash)."""
    x = ix.astype(np.int64).astype(np.uint64) & _M
    y = iy.astype(np.int64).astype(np.uint64) & _M
    h = (
        x * np.uint64(374761393)
        + y * np.uint64(668265263)
        + np.uint64(seed * 2654435761 & 0xFFFFFFFF)
    ) & _M
    h = ((h ^ (h >> np.uint64(13))) * np.uint64(1274126177)) & _M
    h = ((h ^ (h >> np.uint64(16))) * np.uint64(2246822519)) & _M
    h = h ^ (h >> np.uint64(13))
    return (h.astype(np.float64) / 4294967296.0).astype(np.float32)


def value_noise(x: np.ndarray, y: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1) with features about ``scale`` pixels apart."""
    fx, fy = x / scale, y / scale
    ix, iy = np.floor(fx), np.floor(fy)
    tx, ty = fx - ix, fy - iy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    a = hash01(ix, iy, seed)
    b = hash01(ix + 1, iy, seed)
    c = hash01(ix, iy + 1, seed)
    d = hash01(ix + 1, iy + 1, seed)
    return ((a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty).astype(np.float32)


def fbm(x: np.ndarray, y: np.ndarray, scale: float, seed: int, octaves: int = 3) -> np.ndarray:
    """Fractal sum of value noise, roughly in [0, 1)."""
    total = np.zeros(np.broadcast(x, y).shape, np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total += amp * value_noise(x, y, scale / 2**k, seed + 101 * k)
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
