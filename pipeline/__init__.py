"""wastewatch pipeline: one subpackage per part of the data flow.

- :mod:`pipeline.geo`: grids, scenes, vector inputs, raster and vector writing (no torch, Ray,
  Prefect);
- :mod:`pipeline.job`: the AOI job: request schema, plan, tiling, per-tile prediction,
  execution on Ray, vectorizing, detections, provenance, publishing;
- :mod:`pipeline.report`: quicklooks and reports for people;
- :mod:`pipeline.training`: labelled datasets, training runs, Ray Train;
- :mod:`pipeline.synthetic`: synthetic scenes and revisits;
- :mod:`pipeline.evaluation`: detections scored against truth;
- :mod:`pipeline.cli`: the ``wastewatch`` command.

Names are re-exported lazily: ``import pipeline`` pulls in neither torch, GDAL nor Ray.
"""

from ._lazy import lazy_exports

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
    "train_model",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "GeoBox": ".geo",
        "JobRequest": ".job.request",
        "plan_job": ".job.plan",
        "run_job": ".job.run",
        "Tile": ".job.tiling",
        "plan_tiles": ".job.tiling",
        "TilePredictor": ".job.predict",
        "evaluate_detections": ".evaluation",
        "synth_scene": ".synthetic",
        "train_model": ".training.train",
    },
)
