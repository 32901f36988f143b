"""Training data: scenes plus vector labels rasterized on the scene grid, with an ignore index.

Labels are polygons with a ``class`` attribute (dense: every pixel outside a polygon is
background), or points and lines, "scribbles" (sparse: only the pixels they touch are
labelled, background included, the rest ignored). Labels in another CRS are reprojected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.features import rasterize
from shapely import make_valid
from shapely.geometry import box

from models import IGNORE_INDEX

from ..errors import InputError
from ..geo import open_scenes, read_vectors

__all__ = ["LabelledScene", "load_labelled_scenes", "sample_crops", "sample_patches"]

#: scenes larger than this are refused for training (they are read whole).
MAX_TRAIN_PIXELS = 400_000_000


@dataclass
class LabelledScene:
    """A scene's pixels (C, H, W), validity (H, W) and labels (H, W), ``IGNORE_INDEX`` where
    unlabelled or nodata."""

    path: str
    pixels: np.ndarray
    valid: np.ndarray
    labels: np.ndarray
    gsd_m: float
    sparse: bool


def _read_labels(
    scene_path: str,
    labels_path: str,
    classes: list[str],
    crs: object,
    bounds: tuple[float, float, float, float],
):  # type: ignore[no-untyped-def]
    frame = read_vectors(labels_path, "labels")
    if "class" not in frame.columns:
        raise InputError(
            f"labels {labels_path} have no 'class' attribute: add one naming each "
            f"feature's class ({', '.join(classes)})"
        )
    unknown = sorted(set(frame["class"].astype(str)) - set(classes))
    if unknown:
        raise InputError(
            f"labels {labels_path} use classes {unknown} not in {classes}: rename them "
            "or pass --classes"
        )
    frame = frame.to_crs(crs)
    if not frame.intersects(box(*bounds)).any():
        raise InputError(
            f"labels {labels_path} do not overlap scene {scene_path}: check that both "
            "cover the same place"
        )
    return frame


def load_labelled_scenes(
    scenes: list[str | os.PathLike[str]],
    labels: list[str | os.PathLike[str]],
    classes: list[str],
    *,
    sparse: bool | None = None,
    point_radius_px: float = 1.5,
) -> list[LabelledScene]:
    """Read every scene and rasterize its labels on its grid.

    Args:
        scenes: training scenes.
        labels: one label file per scene, in the same order.
        classes: class names; index 0 is the background.
        sparse: treat polygons as sparse labels too (default: sparse only for points/lines).
        point_radius_px: radius of the disc a point label covers, pixels.

    Raises:
        InputError: mismatched counts, band counts that differ, labels without a class attribute
            or with unknown classes, labels that miss their scene, an empty label file.
    """
    if len(scenes) != len(labels):
        raise InputError(
            f"{len(scenes)} scenes but {len(labels)} label files: give one label "
            "file per scene, in the same order"
        )
    infos = open_scenes(list(scenes))
    if len({i.count for i in infos}) > 1:
        counts = ", ".join(f"{Path(i.path).name}: {i.count}" for i in infos)
        raise InputError(
            f"the training scenes have different band counts ({counts}): give "
            "scenes with the same bands"
        )
    out = []
    for scene, lab in zip(scenes, labels, strict=True):
        with rasterio.open(scene) as src:
            if src.width * src.height > MAX_TRAIN_PIXELS:
                raise InputError(
                    f"training scene {scene} has {src.width * src.height / 1e6:.0f} Mpx: "
                    f"crop it below {MAX_TRAIN_PIXELS / 1e6:.0f} Mpx"
                )
            frame = _read_labels(str(scene), str(lab), classes, src.crs, tuple(src.bounds))
            pixels = src.read()
            valid = src.dataset_mask() > 0
            transform, gsd = src.transform, float(src.res[0])
        kinds = set(frame.geometry.geom_type)
        is_sparse = sparse if sparse is not None else not (kinds & {"Polygon", "MultiPolygon"})
        radius = point_radius_px * gsd
        shapes = []
        for geom, cls in zip(frame.geometry, frame["class"].astype(str), strict=True):
            if geom.geom_type in ("Point", "MultiPoint"):
                geom = geom.buffer(radius)
            elif geom.geom_type in ("LineString", "MultiLineString"):
                geom = geom.buffer(gsd * 0.75)
            shapes.append((make_valid(geom), classes.index(cls)))
        fill = IGNORE_INDEX if is_sparse else 0
        # polygons of class 0 (explicit background) are drawn first, so objects win overlaps
        shapes.sort(key=lambda s: s[1] != 0)
        label = rasterize(
            shapes,
            out_shape=valid.shape,
            transform=transform,
            fill=fill,
            dtype="uint8",
            all_touched=is_sparse,
        )
        label[~valid] = IGNORE_INDEX
        if not (label != IGNORE_INDEX).any():
            raise InputError(f"labels {lab} label no valid pixel of scene {scene}")
        out.append(LabelledScene(str(scene), pixels, valid, label, gsd, is_sparse))
    return out


def band_statistics(scenes: list[LabelledScene]) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation over the valid pixels of the scenes."""
    sums = sqs = None
    count = 0
    for s in scenes:
        flat = s.pixels[:, s.valid].astype(np.float64)
        sums = flat.sum(1) if sums is None else sums + flat.sum(1)
        sqs = (flat**2).sum(1) if sqs is None else sqs + (flat**2).sum(1)
        count += flat.shape[1]
    assert sums is not None and sqs is not None
    mean = sums / count
    std = np.sqrt(np.maximum(sqs / count - mean**2, 1e-6))
    return [float(m) for m in mean], [float(v) for v in std]


def _window_all(valid: np.ndarray, size: int) -> np.ndarray:
    """For every size x size window (by its top-left pixel): are all its pixels valid?"""
    integral = np.pad(np.cumsum(np.cumsum(~valid, 0, dtype=np.int64), 1), ((1, 0), (1, 0)))
    bad = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    return bad == 0


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square dilation of a boolean mask by ``radius`` pixels."""
    if not mask.any() or radius <= 0:
        return mask.copy()
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (
        torch.nn.functional.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy()
        > 0
    )


def sample_patches(
    scenes: list[LabelledScene], patch_size: int, per_class: int, seed: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Patches (N, C, P, P) centred on labelled pixels, labelled by their centre pixel.

    Up to ``per_class`` per class; with dense labels a quarter of the background patches lie
    within half a patch of an object, where the decision is hardest. Patches with nodata are
    skipped.
    """
    rng = np.random.default_rng(seed)
    half = patch_size // 2
    xs, ys = [], []
    for s in scenes:
        label = s.labels
        h, w = label.shape
        ok = np.zeros_like(s.valid)
        ok[half : h - patch_size + half + 1, half : w - patch_size + half + 1] = _window_all(
            s.valid, patch_size
        )
        fg = (label > 0) & (label != IGNORE_INDEX)
        near = _dilate(fg, half) & ~fg if not s.sparse else np.zeros_like(fg)
        for k in range(num_classes):
            if k == 0:
                pools = [
                    (np.flatnonzero((label == 0) & ok & ~near), per_class - per_class // 4),
                    (np.flatnonzero(near & ok & (label == 0)), per_class // 4),
                ]
            else:
                pools = [(np.flatnonzero((label == k) & ok), per_class)]
            for pool, n in pools:
                if pool.size == 0 or n == 0:
                    continue
                pick = rng.choice(pool, size=min(n, pool.size), replace=False)
                for r, c in zip(*np.unravel_index(np.sort(pick), label.shape), strict=True):
                    xs.append(
                        s.pixels[
                            :, r - half : r - half + patch_size, c - half : c - half + patch_size
                        ]
                    )
                    ys.append(k)
    if len(set(ys)) < 2:
        raise InputError(
            "the labels give samples of fewer than two classes: label some sites and "
            "some background"
        )
    return np.stack(xs), np.asarray(ys, np.int64)


def sample_crops(
    scenes: list[LabelledScene], size: int, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random crops (N, C, size, size) with their label maps (N, size, size).

    Half of the crops contain a foreground pixel (picked at random) at a random position,
    the others are uniform over the scenes; crops with no labelled pixel are drawn again.
    """
    rng = np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    fg_pools = [np.flatnonzero((s.labels > 0) & (s.labels != IGNORE_INDEX)) for s in scenes]
    tries = 0
    while len(xs) < count and tries < count * 50:
        tries += 1
        i = int(rng.integers(len(scenes)))
        s = scenes[i]
        h, w = s.labels.shape
        if h < size or w < size:
            raise InputError(
                f"scene {s.path} is smaller than the {size}-px training crops: use a "
                "smaller --crop-size"
            )
        if len(xs) % 2 == 0 and fg_pools[i].size:
            r, c = np.unravel_index(fg_pools[i][rng.integers(fg_pools[i].size)], s.labels.shape)
            r0 = int(np.clip(r - rng.integers(size), 0, h - size))
            c0 = int(np.clip(c - rng.integers(size), 0, w - size))
        else:
            r0, c0 = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        lab = s.labels[r0 : r0 + size, c0 : c0 + size]
        if not (lab != IGNORE_INDEX).any():
            continue
        xs.append(s.pixels[:, r0 : r0 + size, c0 : c0 + size])
        ys.append(lab)
    if not xs:
        raise InputError("no training crop holds a labelled pixel: check the labels")
    return np.stack(xs), np.stack(ys)
