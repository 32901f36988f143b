"""Synthetic VHR scenes with planted landfill-like sites, and revisits of them."""

from .landscape import SITE_STYLES, Site, render_block
from .revisit import synth_revisit
from .scene import SynthResult, make_sites, synth_scene

__all__ = [
    "SITE_STYLES",
    "Site",
    "SynthResult",
    "make_sites",
    "render_block",
    "synth_revisit",
    "synth_scene",
]
