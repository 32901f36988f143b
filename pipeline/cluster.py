"""Ray sessions: connect to a cluster or start a local Ray, whatever the working directory."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "GDAL_CACHE_MB",
    "await_ray_stop",
    "bounded_gdal_cache",
    "cpu_actors_per_job",
    "ray_session",
    "state_dir",
]

log = logging.getLogger("wastewatch")
_CHDIR = threading.Lock()
#: a local Ray being shut down in the background (see ``ray_session(stop_behind=True)``)
_STOPPING: list[threading.Thread] = []

#: GDAL's block cache per process (MB) unless ``GDAL_CACHEMAX`` says otherwise. GDAL's default
#: is 5 % of RAM, filled by every scene read and raster written: memory that grows with the
#: scene, in the driver and in every Ray worker. Tiles are read and written whole, so a small
#: cache costs nothing.
GDAL_CACHE_MB = 128


def bounded_gdal_cache() -> str:
    """Set ``GDAL_CACHEMAX`` for this process and those it starts, unless it is set; returns
    it. Call before GDAL first uses its cache (GDAL reads the setting once)."""
    return os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))


def state_dir() -> Path:
    """The project-local state folder (Prefect's database, Ray Train's storage, ...):
    ``$WASTEWATCH_STATE_DIR`` or ``./.wastewatch``."""
    return Path(os.environ.get("WASTEWATCH_STATE_DIR", ".wastewatch")).absolute()


def _code_root() -> Path:
    """The folder that holds this installation's ``pipeline`` and ``models`` packages."""
    return Path(__file__).resolve().parents[1]


@contextmanager
def _neutral_cwd() -> Iterator[None]:
    # Ray puts the driver's working directory first on every worker's sys.path: a user's own
    # `models/` or `pipeline/` folder there would shadow ours in the workers. Ray reads the
    # directory once, when connecting; during that moment it is the folder holding our code.
    with _CHDIR:
        here = os.getcwd()
        os.chdir(_code_root())
        try:
            yield
        finally:
            os.chdir(here)


def await_ray_stop() -> None:
    """Wait for a Ray shut down in the background to be gone."""
    while True:
        try:
            stop = _STOPPING.pop()
        except IndexError:  # none left (or another thread took the last one)
            return
        stop.join()


@contextmanager
def ray_session(
    address: str | None = None, num_cpus: int | None = None, stop_behind: bool = False
) -> Iterator[Any]:
    """Connect to ``address`` (a cluster) or start a local Ray; shut down only what we started.

    Ray's start-up lines and worker output follow the ``wastewatch`` logger: with ``-q`` (level
    WARNING) nothing but warnings reaches the terminal.

    Args:
        stop_behind: shut down in a thread (a local Ray takes a second or two to stop) while
            the caller goes on with work that needs no Ray; the next session, and the
            interpreter's exit, wait for it.
    """
    import ray

    await_ray_stop()
    if ray.is_initialized():
        yield ray
        return
    quiet = not log.isEnabledFor(logging.INFO)
    kwargs: dict[str, Any] = {
        # Ray workers start with this environment: a bounded GDAL block cache in each
        "runtime_env": {"env_vars": {"GDAL_CACHEMAX": bounded_gdal_cache()}},
        "include_dashboard": False,
        "log_to_driver": not quiet,
        "logging_level": logging.WARNING if quiet else logging.INFO,
    }
    with _neutral_cwd():
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), **kwargs)
    try:
        yield ray
    finally:
        if stop_behind:
            # not a daemon: the interpreter waits for it before its atexit handlers (Ray's own)
            stop = threading.Thread(target=ray.shutdown, name="wastewatch-ray-stop")
            stop.start()
            _STOPPING.append(stop)
        else:
            ray.shutdown()


def cpu_actors_per_job(jobs: int) -> int | None:
    """Model actors for each of ``jobs`` jobs sharing the running Ray of a CPU-only cluster
    (its CPUs shared out, at least one each); None without Ray or with GPUs (one actor per
    GPU then)."""
    import ray

    if not ray.is_initialized():
        return None
    resources = ray.cluster_resources()
    if resources.get("GPU", 0):
        return None
    return max(1, int(resources.get("CPU", 1)) // max(1, jobs))
