"""Surveys: one AOI job per municipality of a region for a date, the region-wide merge, the
comparison with the previous survey, the site registry and the report."""

from .._lazy import lazy_exports

__all__ = [
    "SurveyPlan",
    "SurveyRequest",
    "compare_surveys",
    "finish_survey",
    "plan_survey",
    "run_municipality",
    "run_survey",
    "scenes_for_date",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "SurveyPlan": ".run",
        "finish_survey": ".run",
        "plan_survey": ".run",
        "run_municipality": ".run",
        "run_survey": ".run",
        "SurveyRequest": ".request",
        "compare_surveys": ".changes",
        "scenes_for_date": ".scenes",
    },
)
