"""wastewatch pipeline: geo I/O, planning, tiled execution on Ray, rasters, vectors, CLI.

Submodules are imported lazily by the command line; the public API is re-exported here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GeoBox",
    "JobRequest",
    "Tile",
    "TilePredictor",
    "evaluate_detections",
    "plan_job",
    "plan_tiles",
    "run_job",
    "synth_scene",
    "train_patch_model",
]

_WHERE = {
    "GeoBox": "geobox",
    "JobRequest": "job",
    "plan_job": "job",
    "run_job": "job",
    "Tile": "tiling",
    "plan_tiles": "tiling",
    "TilePredictor": "predict",
    "evaluate_detections": "evaluate",
    "synth_scene": "synth",
    "train_patch_model": "training",
}


def __getattr__(name: str) -> Any:
    # Lazy re-exports: `import pipeline` must not pull in torch, GDAL or Ray.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
