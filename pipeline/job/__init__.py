"""One AOI job: request, plan, tiles, per-tile prediction, execution on Ray, vectorizing,
detections, provenance and atomic publishing."""

from .._lazy import lazy_exports

__all__ = ["JobPlan", "JobRequest", "extract_detections", "infer", "plan_job", "run_job"]

__getattr__ = lazy_exports(
    __name__,
    {
        "JobPlan": ".plan",
        "plan_job": ".plan",
        "JobRequest": ".request",
        "extract_detections": ".run",
        "infer": ".run",
        "run_job": ".run",
    },
)
