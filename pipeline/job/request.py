"""The job's parameters as one typed schema, shared by the CLI, the flows and deployments.

A parameter is written down here once: its type, default, bounds and help text. The CLI builds
its options from the same defaults, the ``aoi-job`` flow takes a :class:`JobRequest`, and a
deployment's parameter schema is this model's JSON schema. Validation failures are bad input
(:class:`~pipeline.errors.InputError`, one line).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ..errors import InputError

__all__ = ["JobRequest", "absolute", "iso_date", "request_error"]


def iso_date(value: Any) -> Any:
    """A strict ISO date (``YYYY-MM-DD``) from a string (pydantic alone would also take a number
    of seconds, or "2026-06-15T00:00"); other values pass through to pydantic."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date: give YYYY-MM-DD") from None
    return value


def absolute(path: str) -> str:
    """A local path made absolute (workers may run elsewhere, in another directory); GDAL URIs
    (``/vsis3/...``, ``s3://...``) are left as they are."""
    if "://" in path or path.startswith("/vsi"):
        return path
    return os.path.abspath(os.path.expanduser(path))


class JobRequest(BaseModel):
    """What an operator asks of one AOI job.

    Attributes:
        aoi: AOI vector file (any CRS; GeoJSON is WGS 84).
        scenes: scene files or GDAL URIs.
        model: checkpoint folder.
        out: output folder (must not exist unless ``overwrite``).
        select: codes of AOI features to keep (e.g. ISTAT municipality codes).
        tile_size: tile core side, pixels (clipped to the grid).
        threshold: probability from which a pixel is a detection.
        min_area_m2: smallest site kept.
        crs: output CRS (``EPSG:N``); default the AOI's UTM zone.
        ray_address: Ray cluster address; default a local Ray.
        executor: ``"ray"``, or ``"local"`` to run every tile in this process.
        actors: model actors (default one per GPU; on CPUs one single-threaded actor per CPU).
        overwrite: replace ``out`` if it exists (only once the new output is complete).
        survey_date: date written into the detections (ISO ``YYYY-MM-DD``).
        confidence_high: lowest ``score_max`` of a ``high`` confidence site.
        confidence_medium: lowest ``score_max`` of a ``medium`` one (``low`` below).
        stride: patch classifiers only: one prediction every ``stride`` pixels (a divisor of
            the network's output stride, 1 = every pixel; checked by ``plan_job``); None: the
            network's output stride.
        saliency: patch classifiers only: also write ``saliency.tif`` (Grad-CAM of the
            landfill class).
        resume: continue a killed run of the same job from its finished tiles.
        batch: tiles per forward pass (default: 1 on CPU, 4 on GPU); outputs do not change.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    aoi: Annotated[str, Field(min_length=1, description="AOI vector file (any CRS).")]
    scenes: Annotated[tuple[str, ...], Field(min_length=1, description="Scene files or GDAL URIs.")]
    model: Annotated[str, Field(min_length=1, description="Checkpoint folder.")]
    out: Annotated[str, Field(min_length=1, description="Output folder (must not exist).")]
    select: Annotated[tuple[str, ...], Field(description="Codes of AOI features to keep.")] = ()
    tile_size: Annotated[int, Field(gt=0, description="Tile core side, pixels.")] = 1024
    threshold: Annotated[
        float, Field(gt=0, lt=1, description="Probability from which a pixel is a detection.")
    ] = 0.5
    min_area_m2: Annotated[float, Field(ge=0, description="Smallest site kept, m².")] = 50.0
    crs: Annotated[
        str | None, Field(description="Output CRS, EPSG:N (default: the AOI's UTM zone).")
    ] = None
    ray_address: Annotated[
        str | None, Field(description="Ray cluster address (default: a local Ray).")
    ] = None
    executor: Annotated[
        Literal["ray", "local"], Field(description="'local' runs every tile in this process.")
    ] = "ray"
    actors: Annotated[
        int | None, Field(ge=1, description="Model actors (default: one per GPU, or per CPU).")
    ] = None
    overwrite: Annotated[
        bool, Field(description="Replace the output once the new one is complete.")
    ] = False
    survey_date: Annotated[
        dt.date | None, Field(description="Survey date written into detections, YYYY-MM-DD.")
    ] = None
    confidence_high: Annotated[
        float, Field(gt=0, le=1, description="Lowest score_max of a 'high' confidence site.")
    ] = 0.8
    confidence_medium: Annotated[
        float,
        Field(gt=0, le=1, description="Lowest score_max of a 'medium' confidence site."),
    ] = 0.5
    stride: Annotated[
        Annotated[int, Field(gt=0)] | None,
        Field(
            description="Patch classifiers: one prediction every S pixels, S dividing the "
            "network's output stride (1 = every pixel; default: the output stride)."
        ),
    ] = None
    saliency: Annotated[
        bool,
        Field(
            description="Patch classifiers: also write saliency.tif, Grad-CAM of the landfill "
            "class."
        ),
    ] = False

    resume: Annotated[
        bool,
        Field(description="Continue a killed run of this job from the tiles it finished."),
    ] = False
    batch: Annotated[
        int | None,
        Field(ge=1, description="Tiles per forward pass (default: 1 on CPU, 4 on GPU)."),
    ] = None

    @field_validator("aoi", "model", "out")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return absolute(value)

    @field_validator("scenes")
    @classmethod
    def _absolute_all(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(absolute(v) for v in value)

    @field_validator("select")
    @classmethod
    def _codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(v) for v in value)

    @field_validator("survey_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        return iso_date(value)

    @field_validator("confidence_medium")
    @classmethod
    def _bands_in_order(cls, value: float, info: ValidationInfo) -> float:
        high = info.data.get("confidence_high")
        if high is not None and value > high:
            raise ValueError(f"must not exceed --confidence-high ({high:g})")
        return value

    @classmethod
    def parse(cls, **params: Any) -> JobRequest:
        """Validate parameters; bad ones raise :class:`InputError` with one line."""
        try:
            return cls(**params)
        except ValidationError as exc:
            raise request_error(exc) from None


#: option names as the command line spells them, for messages.
_FLAGS = {
    "min_area_m2": "--min-area",
    "survey_date": "--date",
}


def request_error(exc: ValidationError) -> InputError:
    """One line naming the first bad parameter (as its command-line flag) and what it needs."""
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "parameters"
    flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
    message = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
    if first["type"] == "extra_forbidden":
        return InputError(f"unknown parameter {name!r}: see `wastewatch run --help`")
    return InputError(f"{flag}: {message[0].lower()}{message[1:]}{shown}")
