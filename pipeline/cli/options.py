"""Option decorators shared by the commands, with defaults and help from the request schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["aoi_options", "job_options", "schema_default", "schema_help"]

F = TypeVar("F", bound=Callable[..., Any])


def _field(name: str) -> Any:
    # the schema module imports pydantic only: cheap enough for `--help`
    from ..job.request import JobRequest

    return JobRequest.model_fields[name]


def schema_default(name: str) -> Any:
    """The request schema's default of a parameter."""
    return _field(name).default


def schema_help(name: str) -> str:
    """The request schema's description of a parameter."""
    return str(_field(name).description or "")


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def aoi_options(required: bool = True) -> Callable[[F], F]:
    """``--aoi`` and ``--select``: an AOI file and the codes of its features to keep."""
    return _stack(
        click.option(
            "--aoi",
            required=required,
            type=click.Path(),
            default=None,
            help="Area of interest: GeoJSON, GeoPackage or shapefile (any CRS).",
        ),
        click.option(
            "--select",
            multiple=True,
            help="Code of an AOI feature to keep, e.g. an ISTAT code (repeatable).",
        ),
    )


def job_options(f: F) -> F:
    """Every option of an AOI job (``run`` and ``submit``), named after the request schema's
    fields, so that the parsed options are the request."""
    return _stack(
        aoi_options(required=True),
        click.option(
            "--scenes", required=True, multiple=True, type=click.Path(), help="Scene (repeatable)."
        ),
        click.option("--model", required=True, type=click.Path(), help=schema_help("model")),
        click.option("--out", required=True, type=click.Path(), help=schema_help("out")),
        click.option("--ray-address", default=None, help=schema_help("ray_address")),
        click.option(
            "--tile-size",
            type=int,
            default=schema_default("tile_size"),
            show_default=True,
            help=schema_help("tile_size"),
        ),
        click.option(
            "--threshold",
            type=float,
            default=schema_default("threshold"),
            show_default=True,
            help=schema_help("threshold"),
        ),
        click.option(
            "--min-area",
            "min_area_m2",
            type=float,
            default=schema_default("min_area_m2"),
            show_default=True,
            help=schema_help("min_area_m2"),
        ),
        click.option(
            "--confidence-high",
            type=float,
            default=schema_default("confidence_high"),
            show_default=True,
            help=schema_help("confidence_high"),
        ),
        click.option(
            "--confidence-medium",
            type=float,
            default=schema_default("confidence_medium"),
            show_default=True,
            help=schema_help("confidence_medium"),
        ),
        click.option("--stride", type=int, default=None, help=schema_help("stride")),
        click.option("--saliency", is_flag=True, help=schema_help("saliency")),
        click.option("--crs", default=None, help=schema_help("crs")),
        click.option("--date", "survey_date", default=None, help=schema_help("survey_date")),
        click.option(
            "--executor",
            type=click.Choice(["ray", "local"]),
            default=schema_default("executor"),
            show_default=True,
            help=schema_help("executor"),
        ),
        click.option("--actors", type=int, default=None, help=schema_help("actors")),
        click.option("--batch", type=int, default=None, help=schema_help("batch")),
        click.option("--overwrite", is_flag=True, help=schema_help("overwrite")),
        click.option("--resume", is_flag=True, help=schema_help("resume")),
    )(f)
