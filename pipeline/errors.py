"""Errors raised by :mod:`pipeline`; all derive from :class:`models.errors.WastewatchError`."""

from __future__ import annotations

import warnings

from models.errors import CheckpointError, WastewatchError

__all__ = [
    "AOIError",
    "CRSError",
    "CheckpointError",
    "InputError",
    "InputNotFoundError",
    "NoOverlapError",
    "OutputExistsError",
    "SceneReadError",
    "VectorReadError",
    "WastewatchError",
    "WastewatchWarning",
]


class InputError(WastewatchError, ValueError):
    """An argument or input that cannot be used as given."""


class InputNotFoundError(WastewatchError, FileNotFoundError):
    """An input path that does not exist."""


class SceneReadError(WastewatchError, OSError):
    """A scene that GDAL cannot read, or that lacks what the pipeline needs."""


class VectorReadError(WastewatchError, OSError):
    """A vector file (AOI, labels, truth, detections) that cannot be read."""


class CRSError(WastewatchError, ValueError):
    """A dataset without a coordinate reference system, or with an unusable one."""


class AOIError(WastewatchError, ValueError):
    """An area of interest that is empty or misses the scenes."""


class NoOverlapError(AOIError):
    """An area of interest that no scene covers (in a survey: a municipality without imagery
    for the date, which is skipped rather than failed)."""


class OutputExistsError(WastewatchError, FileExistsError):
    """An output folder that already exists."""


class WastewatchWarning(UserWarning):
    """Something worth knowing that does not stop the job."""


def warn(message: str) -> None:
    """Issue a :class:`WastewatchWarning` attributed to the caller's caller."""
    warnings.warn(message, WastewatchWarning, stacklevel=3)
