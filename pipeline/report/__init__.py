"""Pictures and pages for people: quicklooks, image chips and ``report.html`` pages."""

from .page import SiteTable, data_uri, site_chips, write_report
from .quicklook import Overlay, quicklook, scale_bar_length, write_png

__all__ = [
    "Overlay",
    "SiteTable",
    "data_uri",
    "quicklook",
    "scale_bar_length",
    "site_chips",
    "write_png",
    "write_report",
]
