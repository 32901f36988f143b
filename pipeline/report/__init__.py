"""Pictures and pages for people: quicklooks (and, as they come, job and survey reports)."""

from .quicklook import quicklook, write_png

__all__ = ["quicklook", "write_png"]
