"""The configuration of ``wastewatch serve``: the regions to survey on a schedule, in TOML.

```toml
limit = 4                          # optional: flow runs at a time in this serve process

[[region]]
name = "monza-brianza"             # the deployment survey/monza-brianza
municipalities = "municipalities/monza_brianza.geojson"
select = ["108014", "108026"]      # optional: municipality codes (default all)
scenes = ["imagery/"]              # files, folders or glob patterns
model = "models/patch"
out = "surveys/monza-brianza"      # the region's folder (ROOT)
cron = "0 2 1 */3 *"               # quarterly, 02:00 on the 1st
timezone = "Europe/Rome"           # of the cron, and of each run's survey date
max_age_days = 120                 # optional, and any other survey option
```

Relative paths are relative to the file's folder. Every region is checked before anything is
served; a problem is one line naming the file, the region and the key.
"""

from __future__ import annotations

import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import InputError, InputNotFoundError, WastewatchError
from pipeline.job.request import absolute
from pipeline.survey import SurveyRequest
from pipeline.survey.run import read_municipalities

__all__ = ["RegionConfig", "ServeConfig", "load_config"]

#: keys of a region table besides the survey's own options.
SCHEDULE_KEYS = ("name", "cron", "timezone")
#: survey options a region may set (its date is each run's scheduled date).
SURVEY_KEYS = tuple(k for k in SurveyRequest.model_fields if k != "date")
TOP_KEYS = ("limit", "region")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


class RegionConfig(BaseModel):
    """One region: its survey deployment's name, schedule and survey parameters.

    Attributes:
        name: the deployment's name (``survey/NAME``).
        cron: five-field cron expression of the schedule.
        timezone: IANA timezone of the cron, and of each run's survey date.
        request: the survey, without a date (each run surveys its scheduled date).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=f"^{_NAME}$", max_length=100)]
    cron: str
    timezone: str
    request: SurveyRequest


class ServeConfig(BaseModel):
    """What ``wastewatch serve`` serves.

    Attributes:
        path: the configuration file.
        regions: the regions, in file order.
        limit: flow runs at a time in the serve process (None: no limit).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    regions: tuple[RegionConfig, ...]
    limit: Annotated[int | None, Field(ge=1)] = None


def load_config(path: str | Path) -> ServeConfig:
    """Read and check a ``serve`` configuration: every region, before anything is served.

    Raises:
        InputNotFoundError: the file, or a region's municipalities file, does not exist.
        InputError: a TOML syntax error, an unknown or missing key, a bad value, a bad cron
            or timezone, a duplicate region name; one line naming file, region and key.
    """
    file = Path(path)
    if not file.is_file():
        raise InputNotFoundError(
            f"config {path} does not exist: give a surveys TOML file "
            "(see infra/surveys.example.toml)"
        )
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: not valid TOML: {_one_line(exc)}: fix the file") from None
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise InputError(
            f"{file}: unknown key {unknown[0]!r} (top-level keys: {', '.join(TOP_KEYS)}): "
            "regions go in [[region]] tables"
        )
    tables = doc.get("region")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise InputError(f"{file}: no regions: add at least one [[region]] table")
    regions: list[RegionConfig] = []
    for i, table in enumerate(tables):
        region = _region(file, i, table)
        if any(r.name == region.name for r in regions):
            raise InputError(
                f"{file}: region {region.name!r} appears twice: region names name the "
                "deployments, give each region its own"
            )
        regions.append(region)
    try:
        return ServeConfig(path=str(file.resolve()), regions=tuple(regions), limit=doc.get("limit"))
    except ValidationError as exc:
        raise InputError(f"{file}: limit: {_pydantic_message(exc)}") from None


def _region(file: Path, index: int, table: dict[str, Any]) -> RegionConfig:
    name = table.get("name")
    where = f"{file}: region {name!r}" if isinstance(name, str) else f"{file}: region {index + 1}"
    if "date" in table:
        raise InputError(
            f"{where}: key 'date' is not allowed: each scheduled run surveys the date of its "
            "scheduled start in the region's timezone; remove it"
        )
    unknown = sorted(set(table) - set(SCHEDULE_KEYS) - set(SURVEY_KEYS))
    if unknown:
        raise InputError(
            f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(SCHEDULE_KEYS + SURVEY_KEYS)})"
            ": fix its spelling"
        )
    missing = [
        k for k in (*SCHEDULE_KEYS, "municipalities", "scenes", "model", "out") if k not in table
    ]
    if missing:
        raise InputError(f"{where}: key {missing[0]!r} is missing: add it")
    params = {k: v for k, v in table.items() if k not in SCHEDULE_KEYS}
    params = _resolved(params, file.parent)
    try:
        request = SurveyRequest(**params)
    except ValidationError as exc:
        raise InputError(f"{where}: {_pydantic_message(exc)}") from None
    name_ok = isinstance(name, str) and re.fullmatch(_NAME, name) and len(name) <= 100
    if not name_ok:
        raise InputError(
            f"{where}: name {name!r} cannot name the deployment survey/NAME: use letters, "
            "digits, '-', '_' or '.' (at most 100)"
        )
    try:
        region = RegionConfig(
            name=table["name"], cron=table["cron"], timezone=table["timezone"], request=request
        )
    except ValidationError as exc:
        raise InputError(f"{where}: {_pydantic_message(exc)}") from None
    _check_timezone(where, region.timezone)
    _check_cron(where, region.cron, region.timezone)
    _check_municipalities(where, request)
    return region


def _resolved(params: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths made relative to the config file's folder; codes as strings."""

    def resolve(value: Any) -> Any:
        if not isinstance(value, str) or "://" in value or value.startswith("/vsi"):
            return value
        return absolute(str(base / Path(value).expanduser()))

    out = dict(params)
    for key in ("municipalities", "model", "out"):
        out[key] = resolve(out[key])
    previous = out.get("previous")
    if isinstance(previous, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", previous):
        out["previous"] = resolve(previous)  # a survey folder, not a date
    if isinstance(out["scenes"], str):
        out["scenes"] = [out["scenes"]]
    if isinstance(out["scenes"], list):
        out["scenes"] = [resolve(s) for s in out["scenes"]]
    if isinstance(out.get("select"), str | int):
        out["select"] = [out["select"]]
    if isinstance(out.get("select"), list):
        out["select"] = [str(c) if isinstance(c, int) else c for c in out["select"]]
    return out


def _check_timezone(where: str, timezone: str) -> None:
    if timezone not in zoneinfo.available_timezones():
        raise InputError(
            f"{where}: timezone {timezone!r} is not an IANA timezone: use a name such as "
            "'Europe/Rome' or 'UTC'"
        )


def _check_cron(where: str, cron: str, timezone: str) -> None:
    from prefect.schedules import Cron

    if len(cron.split()) != 5 and not cron.startswith("@"):  # or an alias such as @daily
        raise InputError(
            f"{where}: cron {cron!r} needs five fields (minute hour day month weekday), "
            "e.g. '0 2 1 */3 *' for 02:00 on the first day of every third month"
        )
    try:
        Cron(cron, timezone=timezone)
    except ValueError:
        raise InputError(
            f"{where}: cron {cron!r} is not a valid cron expression: use five fields "
            "(minute hour day month weekday), e.g. '0 2 1 */3 *'"
        ) from None


def _check_municipalities(where: str, request: SurveyRequest) -> None:
    try:
        read_municipalities(request)
    except InputNotFoundError as exc:
        raise InputNotFoundError(
            f"{where}: {_one_line(exc)} (relative paths are relative to the config file)"
        ) from None
    except WastewatchError as exc:
        raise InputError(f"{where}: {_one_line(exc)}") from None


def _pydantic_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "value"
    message = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
    return f"{key}: {message[0].lower()}{message[1:]}{shown}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
