"""Running the per-tile work: in this process, or on Ray (CPU read tasks feeding model actors)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shapely.geometry.base import BaseGeometry

from models import WastewatchError

from .geobox import GeoBox
from .predict import TileInput, TilePredictor, TileResult, read_tile
from .progress import progress
from .scenes import SceneInfo
from .tiling import Tile

__all__ = ["ExecStats", "Workload", "execute_local", "execute_ray", "ray_session"]

log = logging.getLogger("wastewatch")
Sink = Callable[[TileResult], None]


@dataclass
class ExecStats:
    """Counts and timings of an execution."""

    tiles: int = 0
    empty_tiles: int = 0
    pixels: int = 0
    seconds: float = 0.0
    executor: str = "local"
    workers: int = 1
    device: str = "cpu"

    @property
    def megapixels_per_second(self) -> float:
        return self.pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiles": self.tiles,
            "empty_tiles": self.empty_tiles,
            "pixels": self.pixels,
            "seconds": round(self.seconds, 3),
            "megapixels_per_second": round(self.megapixels_per_second, 3),
            "executor": self.executor,
            "workers": self.workers,
            "device": self.device,
        }


def _count(stats: ExecStats, result: TileResult) -> None:
    stats.tiles += 1
    stats.pixels += int(result.tile.core.width * result.tile.core.height)


@dataclass(frozen=True)
class Workload:
    """What every tile of a job needs besides its own window.

    Attributes:
        scenes: the scenes, newest first.
        grid: the output grid.
        aoi: the area of interest in the grid's CRS (outputs are nodata outside it).
        checkpoint: the model's checkpoint folder (each worker loads it).
        bands: bands the model reads.
        threshold: probability from which a pixel is a detection.
    """

    scenes: list[SceneInfo]
    grid: GeoBox
    aoi: BaseGeometry | None
    checkpoint: str
    bands: int
    threshold: float = 0.5

    def read(self, tile: Tile) -> TileInput:
        return read_tile(tile, self.scenes, self.grid, self.bands, self.aoi)


def execute_local(
    tiles: list[Tile], work: Workload, sink: Sink, *, device: str = "auto"
) -> ExecStats:
    """Read, predict and write every tile in this process, one after another."""
    start = time.perf_counter()
    predictor = TilePredictor(work.checkpoint, device=device, threshold=work.threshold)
    stats = ExecStats(executor="local", device=str(predictor.device))
    with progress(len(tiles), "tiles") as advance:
        for tile in tiles:
            item = work.read(tile)
            stats.empty_tiles += item.empty
            result = predictor.predict(item)
            sink(result)
            _count(stats, result)
            advance(1)
    stats.seconds = time.perf_counter() - start
    return stats


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to ``address`` (a cluster) or start a local Ray; shut down only what we started."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


class _PredictorActor:
    """A model held on one device; Ray instantiates it remotely."""

    def __init__(self, checkpoint: str, device: str, threads: int, threshold: float) -> None:
        self.predictor = TilePredictor(
            checkpoint, device=device, threads=threads, threshold=threshold
        )

    def device(self) -> str:
        return str(self.predictor.device)

    def predict(self, item: TileInput) -> TileResult:
        return self.predictor.predict(item)


def _read_task(tile: Tile, work: Workload) -> TileInput:
    return work.read(tile)


def execute_ray(
    tiles: list[Tile],
    work: Workload,
    sink: Sink,
    *,
    address: str | None = None,
    actors: int | None = None,
    max_in_flight: int | None = None,
) -> ExecStats:
    """Fan the tiles out on Ray and hand each result to ``sink`` in the calling process.

    Reading and reprojection run in CPU tasks; inference runs in actors that each hold the
    model (one per GPU when the cluster has GPUs, else ``actors`` CPU actors). At most
    ``max_in_flight`` tiles are between reading and writing at once, so memory is bounded by the
    tile size, not the scene. Failed tasks are retried by Ray; an actor that dies is restarted.
    """
    start = time.perf_counter()
    with ray_session(address) as ray:
        from ray.exceptions import RayTaskError

        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        if gpus:
            n_actors, actor_opts, device = actors or gpus, {"num_gpus": 1, "num_cpus": 1}, "cuda"
            threads = 1
        else:
            # An actor that holds every CPU would starve the read tasks: keep one core for them.
            n_actors = actors or 1
            actor_opts, device = {"num_cpus": 1}, "cpu"
            threads = max(1, cpus // n_actors)
        actor_cls = ray.remote(max_restarts=2, max_task_retries=2, **actor_opts)(_PredictorActor)
        pool = [
            actor_cls.remote(work.checkpoint, device, threads, work.threshold)
            for _ in range(n_actors)
        ]
        read_remote = ray.remote(num_cpus=1, max_retries=3)(_read_task)
        work_ref = ray.put(work)  # shipped once, not with every task
        stats = ExecStats(executor="ray", workers=n_actors, device=device)
        limit = max_in_flight or 2 * n_actors + 2
        pending: dict[Any, Tile] = {}
        queue = iter(enumerate(tiles))

        def submit() -> bool:
            nxt = next(queue, None)
            if nxt is None:
                return False
            i, tile = nxt
            item = read_remote.remote(tile, work_ref)
            pending[pool[i % n_actors].predict.remote(item)] = tile
            return True

        try:
            while len(pending) < limit and submit():
                pass
            with progress(len(tiles), "tiles") as advance:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    pending.pop(ready[0])
                    result: TileResult = ray.get(ready[0])
                    stats.empty_tiles += bool((result.mask == 255).all())
                    sink(result)
                    _count(stats, result)
                    advance(1)
                    submit()
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, WastewatchError):
                raise cause from None
            raise
        finally:
            for actor in pool:
                ray.kill(actor)
    stats.seconds = time.perf_counter() - start
    log.info(
        "executed %d tiles on Ray with %d %s actor(s) in %.1f s",
        stats.tiles,
        n_actors,
        device,
        stats.seconds,
    )
    return stats
