"""A survey's parameters as one typed schema (CLI, flow and deployments share it)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..job.request import JobRequest, absolute, iso_date, request_error

__all__ = ["SurveyRequest"]


class SurveyRequest(BaseModel):
    """What an operator asks of one survey of a region.

    Attributes:
        municipalities: vector file of the region's municipalities (one feature each, with a
            code attribute such as ``com_istat_code``).
        select: codes of the municipalities to survey (default: all).
        scenes: files, folders or glob patterns of imagery; each date uses what was acquired
            on or before it.
        model: checkpoint folder.
        date: the survey date; None only in a scheduled deployment's parameters, where the
            ``survey`` flow fills in the run's scheduled date (a plan needs a date).
        out: the region's folder (ROOT): surveys go to ``ROOT/DATE``.
        previous: the survey to compare with (a date under ROOT, or a survey folder); default
            the newest earlier survey under ROOT.
        max_age_days: oldest imagery a survey uses, in days before its date.
        change_threshold: relative area change from which a site is grown or shrunk.
        concurrency: municipality jobs at a time.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    municipalities: Annotated[str, Field(min_length=1, description="Municipalities file.")]
    select: Annotated[tuple[str, ...], Field(description="Municipality codes (default all).")] = ()
    scenes: Annotated[
        tuple[str, ...], Field(min_length=1, description="Scene files, folders or globs.")
    ]
    model: Annotated[str, Field(min_length=1, description="Checkpoint folder.")]
    date: Annotated[
        dt.date | None,
        Field(description="Survey date, YYYY-MM-DD (scheduled runs: the scheduled date)."),
    ] = None
    out: Annotated[str, Field(min_length=1, description="Region folder (ROOT).")]
    previous: Annotated[
        str | None, Field(description="Survey to compare with: a date or a survey folder.")
    ] = None
    max_age_days: Annotated[
        int, Field(ge=0, description="Oldest imagery used, days before the date.")
    ] = 365
    change_threshold: Annotated[
        float, Field(gt=0, lt=1, description="Area change from which a site grew/shrank.")
    ] = 0.25
    concurrency: Annotated[int, Field(ge=1, description="Municipality jobs at a time.")] = 2
    tile_size: Annotated[int, Field(gt=0, description="Tile core side, pixels.")] = 1024
    threshold: Annotated[float, Field(gt=0, lt=1, description="Detection probability.")] = 0.5
    min_area_m2: Annotated[float, Field(ge=0, description="Smallest site kept, m².")] = 50.0
    ray_address: Annotated[str | None, Field(description="Ray cluster address.")] = None
    executor: Annotated[Literal["ray", "local"], Field(description="'local': no Ray.")] = "ray"

    @field_validator("municipalities", "model", "out")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return absolute(value)

    @field_validator("scenes")
    @classmethod
    def _absolute_all(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v if any(c in v for c in "*?[") else absolute(v) for v in value)

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        return iso_date(value)

    @classmethod
    def parse(cls, **params: Any) -> SurveyRequest:
        """Validate parameters; bad ones raise :class:`InputError` with one line."""
        try:
            return cls(**params)
        except ValidationError as exc:
            raise request_error(exc) from None

    def on(self, date: dt.date) -> SurveyRequest:
        """The same survey for ``date``."""
        return self.model_copy(update={"date": date})

    def job(self, code: str, scenes: tuple[str, ...], out: str) -> JobRequest:
        """The AOI job of one municipality of this survey."""
        return JobRequest(
            aoi=self.municipalities,
            select=(code,),
            scenes=scenes,
            model=self.model,
            out=out,
            tile_size=self.tile_size,
            threshold=self.threshold,
            min_area_m2=self.min_area_m2,
            ray_address=self.ray_address,
            executor=self.executor,
            survey_date=self.date,
            resume=True,  # a killed survey's unfinished jobs continue from their finished tiles
        )
