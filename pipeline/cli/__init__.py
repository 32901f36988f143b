"""The ``wastewatch`` command line: argument parsing around :mod:`pipeline` functions.

One module per command group. Imports of the heavy stack (torch, Ray, Prefect) happen inside
the commands so that ``wastewatch --help`` stays fast.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
import warnings
from typing import Any

import click

from .bench import bench_cmd
from .evaluate import eval_cmd
from .run import run_cmd
from .serve import serve_cmd
from .submit import submit_cmd
from .survey import survey_cmd
from .synth import synth
from .train import train_cmd

__all__ = ["cli", "main"]

log = logging.getLogger("wastewatch")


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False

    def one_line(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        click.echo(f"wastewatch: warning: {_one_line(Exception(str(message)))}", err=True)

    warnings.showwarning = one_line
    # boundless reads (picture chips at a scene's edge) go through an ungeoreferenced VRT
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")


def _print_version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from ..version import code_version

    click.echo(f"wastewatch {code_version()}")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version and exit.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def cli(quiet: bool) -> None:
    """wastewatch: find suspected illegal landfills in VHR imagery.

    Tiles scenes, runs fully convolutional models on Ray, and writes georeferenced probability
    and mask COGs plus ranked site polygons (GeoJSON, GeoPackage).
    """
    _setup_logging(quiet)


cli.add_command(synth)
cli.add_command(train_cmd)
cli.add_command(run_cmd)
cli.add_command(survey_cmd)
cli.add_command(eval_cmd)
cli.add_command(bench_cmd)
cli.add_command(serve_cmd)
cli.add_command(submit_cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point: exit 0 on success, 2 on bad input (one line on stderr), 1 on a failure."""
    from ..cluster import bounded_gdal_cache
    from ..errors import WastewatchError

    bounded_gdal_cache()
    # the interpreter's last garbage collections, at exit, walk every object torch's modules
    # made: a second of every command's wall time. Registered first, this runs after every
    # other exit handler (Ray's, logging's flush), when nothing is left to finalize but
    # modules: their objects are left to the process's end.
    atexit.register(gc.freeze)
    try:
        # without standalone mode, click returns the code of `ctx.exit(code)` instead of raising
        code = cli.main(args=argv, prog_name="wastewatch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("wastewatch: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(f"wastewatch: error: {exc.format_message()} (see --help)", err=True)
        sys.exit(2)
    except WastewatchError as exc:
        click.echo(f"wastewatch: error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("wastewatch: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("WASTEWATCH_DEBUG"):
            raise
        click.echo(
            f"wastewatch: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(set WASTEWATCH_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
