"""One AOI job: request, plan, tiles, per-tile prediction, execution on Ray, vectorizing,
detections, provenance and atomic publishing."""

from .._lazy import lazy_exports

__all__ = [
    "JobPlan",
    "JobRequest",
    "cogs",
    "extract_detections",
    "finish_outputs",
    "infer",
    "plan_job",
    "run_job",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "JobPlan": ".plan",
        "plan_job": ".plan",
        "JobRequest": ".request",
        "cogs": ".run",
        "extract_detections": ".run",
        "finish_outputs": ".run",
        "infer": ".run",
        "run_job": ".run",
    },
)
