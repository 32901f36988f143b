"""Ray sessions: connect to a cluster or start a local Ray, whatever the working directory."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "GDAL_CACHE_MB",
    "abandon_early_ray",
    "await_ray_stop",
    "bounded_gdal_cache",
    "cpu_actors_per_job",
    "ray_session",
    "retain_freed_memory",
    "start_ray_early",
    "state_dir",
    "workers_env",
]

log = logging.getLogger("wastewatch")
_CHDIR = threading.Lock()
#: a local Ray being shut down in the background (see ``ray_session(stop_behind=True)``)
_STOPPING: list[threading.Thread] = []
#: the local Rays this process started (their GCS addresses) with the variables of ours their
#: workers inherited (see ``_init``)
_INHERITED: dict[str, dict[str, str]] = {}

#: GDAL's block cache per process (MB) unless ``GDAL_CACHEMAX`` says otherwise. GDAL's default
#: is 5 % of RAM, filled by every scene read and raster written: memory that grows with the
#: scene, in the driver and in every Ray worker. Tiles are read and written whole, so a small
#: cache costs nothing.
GDAL_CACHE_MB = 128


def bounded_gdal_cache() -> str:
    """Set ``GDAL_CACHEMAX`` for this process and those it starts, unless it is set; returns
    it. Call before GDAL first uses its cache (GDAL reads the setting once)."""
    return os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the heap (glibc's largest threshold on 64-bit systems)
_MMAP_THRESHOLD = 32 << 20
#: free memory at the heap's top kept for the next allocations instead of given back
_TRIM_THRESHOLD = 256 << 20


def retain_freed_memory() -> bool:
    """Have glibc's allocator serve this process's blocks of up to 32 MB from its heap and
    keep what is freed for the next ones (``mallopt``), instead of mapping fresh pages for
    each and unmapping them when freed: a row-streamed network allocates and frees every
    stripe's activations (a few MB each), and every fresh page costs a fault and its zeroing
    in the kernel. Measured on 2 cores, one model on a 2104 px input: 211 000 to 357 000 page
    faults and 0.6 to 0.75 s of system time per 5 passes against 2 000 to 3 500 and none, and
    7 to 11 % more Mpx/s. Memory stays near the process's peak instead of shrinking between
    calls (a 400 Mpx job's peak PSS, all processes: 1.79 GB, against 1.78 before).

    For processes that run a job's tiles (model actors; the local executor, in the process
    that runs the job): the setting is process-wide. Returns whether the allocator took it
    (False off glibc).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )


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


def _init_kwargs() -> dict[str, Any]:
    quiet = not log.isEnabledFor(logging.INFO)
    return {
        "include_dashboard": False,
        "log_to_driver": not quiet,
        "logging_level": logging.WARNING if quiet else logging.INFO,
    }


def _init(address: str | None, num_cpus: int | None = None) -> None:
    """Connect to ``address`` or start a local Ray, its workers with a bounded GDAL cache.

    A cluster's workers get the cache through the job's runtime environment. A local Ray's
    processes inherit this one's environment (where :func:`bounded_gdal_cache` sets it): a
    runtime environment of the job would only keep every task and actor from the workers Ray
    starts beside a new session (they have none), and each would wait for a new Python
    process instead (measured on 2 cores: a 400 Mpx job's model actors computing 1 s later,
    and the started workers' CPU spent for nothing).
    """
    import ray

    cache = bounded_gdal_cache()
    with _neutral_cwd():
        if address:
            env = {"GDAL_CACHEMAX": cache}
            ray.init(address=address, runtime_env={"env_vars": env}, **_init_kwargs())
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), **_init_kwargs())
            _INHERITED[_gcs_address(ray)] = {"GDAL_CACHEMAX": cache}


def _gcs_address(ray: Any) -> str:
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # not connected
        return ""


def _shutdown(ray: Any) -> None:
    """Shut down the local Ray started here (see :func:`_init`)."""
    _INHERITED.pop(_gcs_address(ray), None)
    ray.shutdown()


def workers_env(ray: Any) -> dict[str, str]:
    """The environment variables every worker of the connected session has been given by us:
    those of the job's runtime environment, or those a local Ray started here inherited."""
    inherited = _INHERITED.get(_gcs_address(ray))
    if inherited is not None:
        return dict(inherited)
    try:
        return dict(ray.get_runtime_context().runtime_env.get("env_vars") or {})
    except Exception:  # no runtime environment to read
        return {}


class _Held(logging.Filter):
    """Holds back the records of Ray's logger while a Ray starts early: nothing reaches the
    terminal before the job that needs it has been planned (bad input is one line)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.handlers = list(logging.getLogger("ray").handlers)
        for handler in self.handlers:
            handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False

    def release(self, show: bool) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        for record in self.records if show else []:
            # Ray's note that a driver connected from a thread sets no SIGTERM handler:
            # start_ray_early sets the same
            if not record.getMessage().startswith("SIGTERM handler is not set"):
                logging.getLogger(record.name).handle(record)
        self.records = []


class _EarlyRay:
    """A Ray started in a thread of its own while the caller plans, kept and stopped by that
    thread: Ray's processes share the fate of the thread that started them (Linux's
    parent-death signal follows the thread), so it must outlive the session."""

    def __init__(self, address: str | None) -> None:
        import ray  # imported here, once: not by two threads at the same time

        self.ray = ray
        self.address = address
        self.held = _Held()
        self.error: BaseException | None = None
        self.abandoned = False
        self.started = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="wastewatch-ray")
        self.thread.start()

    def _run(self) -> None:
        try:
            _init(self.address)
        except BaseException as exc:  # handed to the session that wants this Ray
            self.error = exc
        self.started.set()
        self.stop.wait()
        if self.error is None:
            _shutdown(self.ray)
        if self.abandoned:  # what Ray said while starting for nobody: dropped
            self.held.release(show=False)


#: the Ray being started for the next session (see :func:`start_ray_early`)
_EARLY: list[_EarlyRay] = []


def start_ray_early(address: str | None = None) -> None:
    """Start connecting to ``address`` (or a local Ray) in a thread now, while this process
    goes on planning: on a small machine the planner's imports leave a core idle for the few
    seconds a local Ray takes to start. The next :func:`ray_session` with the same address
    takes it over; :func:`abandon_early_ray` stops it if no session will (bad input). Ray's
    log lines wait for that session, so bad input is still one line.

    Paths the caller opens meanwhile must be absolute (the working directory is that of our
    code while Ray connects: see ``_neutral_cwd``).
    """
    await_ray_stop()
    import ray

    if _EARLY or ray.is_initialized():
        return
    if threading.current_thread() is threading.main_thread():
        # what ray.init does in the main thread: SIGTERM exits (cleanly, through finally
        # blocks and exit handlers) instead of killing the process
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
    _EARLY.append(_EarlyRay(address))


def abandon_early_ray() -> None:
    """Stop the Ray :func:`start_ray_early` started (once it has started), in its thread;
    its log lines are dropped. The interpreter's exit waits for it."""
    while _EARLY:
        early = _EARLY.pop()
        early.abandoned = True
        early.stop.set()
        _STOPPING.append(early.thread)


@contextmanager
def ray_session(
    address: str | None = None, num_cpus: int | None = None, stop_behind: bool = False
) -> Iterator[Any]:
    """Connect to ``address`` (a cluster) or start a local Ray; shut down only what we started.

    A Ray being started by :func:`start_ray_early` for the same address is taken over (and
    shut down at the end like one started here).

    Ray's start-up lines and worker output follow the ``wastewatch`` logger: with ``-q`` (level
    WARNING) nothing but warnings reaches the terminal.

    Args:
        stop_behind: shut down in a thread (a local Ray takes a second or two to stop) while
            the caller goes on with work that needs no Ray; the next session, and the
            interpreter's exit, wait for it.
    """
    early = _EARLY.pop() if _EARLY else None
    if early is not None and (early.address != address or num_cpus is not None):
        _EARLY.append(early)
        abandon_early_ray()  # not the Ray wanted
        early = None
    if early is not None:
        early.started.wait()
        early.held.release(show=True)
        if early.error is not None:  # raised here, as a Ray started here would
            early.stop.set()
            early.thread.join()
            raise early.error
        try:
            yield early.ray
        finally:
            early.stop.set()
            if stop_behind:
                _STOPPING.append(early.thread)
            else:
                early.thread.join()
        return

    import ray

    await_ray_stop()
    if ray.is_initialized():
        yield ray
        return
    _init(address, num_cpus)
    try:
        yield ray
    finally:
        if stop_behind:
            # not a daemon: the interpreter waits for it before its atexit handlers (Ray's own)
            stop = threading.Thread(target=_shutdown, args=(ray,), name="wastewatch-ray-stop")
            stop.start()
            _STOPPING.append(stop)
        else:
            _shutdown(ray)


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
