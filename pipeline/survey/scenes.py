"""The scenes of a survey date: files, folders and glob patterns, filtered by acquisition date."""

from __future__ import annotations

import datetime as dt
import glob
import os
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError

from ..errors import InputError, InputNotFoundError

__all__ = ["SCENE_SUFFIXES", "DatedScene", "acquisition_date", "scenes_for_date"]

#: files taken from a folder.
SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")


@dataclass(frozen=True)
class DatedScene:
    """A scene and its acquisition date."""

    path: str
    acquired: dt.date


def acquisition_date(path: str) -> dt.date | None:
    """The ``ACQUISITION_DATE`` tag (ISO) or ``TIFFTAG_DATETIME`` (``YYYY:MM:DD HH:MM:SS``) of a
    raster; None when it has neither or they are not dates."""
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except RasterioError:
        return None
    for key in ("ACQUISITION_DATE", "TIFFTAG_DATETIME"):
        text = tags.get(key, "").strip()
        if len(text) >= 10:
            try:
                return dt.date.fromisoformat(text[:10].replace(":", "-"))
            except ValueError:
                continue
    return None


def _expand(pattern: str) -> list[str]:
    if "://" in pattern or pattern.startswith("/vsi"):
        return [pattern]
    path = Path(pattern)
    if path.is_dir():
        return sorted(
            str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in SCENE_SUFFIXES
        )
    if any(c in pattern for c in "*?["):
        return sorted(glob.glob(pattern, recursive=True))
    if not path.exists():
        raise InputNotFoundError(f"scenes {pattern} do not exist: check the path or pattern")
    return [str(path)]


def scenes_for_date(
    patterns: list[str], date: dt.date, max_age_days: int | None = None
) -> list[DatedScene]:
    """The scenes a survey of ``date`` uses: acquired on or before it (and within
    ``max_age_days``), newest first (ties by path), so that a schedule can point at one folder
    that keeps receiving imagery.

    Raises:
        InputNotFoundError: a path that does not exist.
        InputError: no usable scene for the date (the message says what was found).
    """
    found: dict[str, dt.date | None] = {}
    for pattern in patterns:
        for path in _expand(pattern):
            found.setdefault(os.path.abspath(path) if "://" not in path else path, None)
    undated = 0
    kept: list[DatedScene] = []
    for path in found:
        acquired = acquisition_date(path)
        if acquired is None:
            undated += 1
            continue
        if acquired > date:
            continue
        if max_age_days is not None and (date - acquired).days > max_age_days:
            continue
        kept.append(DatedScene(path, acquired))
    if not kept:
        where = ", ".join(patterns)
        age = f" and at most {max_age_days} days before it" if max_age_days is not None else ""
        extra = f"; {undated} had no acquisition date tag" if undated else ""
        raise InputError(
            f"no scene in {where} was acquired on or before {date.isoformat()}{age} "
            f"({len(found)} raster(s) found{extra}): add imagery for the date, or raise "
            "--max-age; dates come from the ACQUISITION_DATE or TIFFTAG_DATETIME tag"
        )
    kept.sort(key=lambda s: (-s.acquired.toordinal(), s.path))
    return kept
