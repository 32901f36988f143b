"""Prefect flows: thin wiring of :mod:`pipeline` functions. No geo logic lives here.

Prefect is imported lazily, so that :func:`flows.settings.prefect_environment` can set its
environment first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["aoi_job", "survey"]


def __getattr__(name: str) -> Any:
    if name == "aoi_job":
        from .job import aoi_job

        return aoi_job
    if name == "survey":
        from .survey import survey

        return survey
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
