"""Prefect flows: thin wiring of :mod:`pipeline` functions. No geo logic lives here."""

from .job import aoi_job

__all__ = ["aoi_job"]
