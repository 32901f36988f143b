"""Running the per-tile work: in this process, or on Ray (CPU read tasks feeding model actors)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shapely.geometry.base import BaseGeometry

from ..cluster import ray_session, retain_freed_memory
from ..errors import WastewatchError
from ..geo import GeoBox, SceneInfo
from ..progress import progress
from .placement import Dispatch, actor_env, placement
from .tiledata import GroupInput, PictureLattice, TileInput, TileResult, read_group, read_tile
from .tiling import Tile, TileGroup, group_tiles
from .vectorize import encode_pieces, tile_pieces

if TYPE_CHECKING:
    from .predict import TilePredictor

__all__ = [
    "GROUP_SIDE",
    "ExecStats",
    "Workload",
    "default_batch",
    "execute_local",
    "execute_ray",
    "group_side",
]

log = logging.getLogger("wastewatch")
Sink = Callable[[TileResult], None]

#: tiles per side of the groups a CPU runs through the network as one window (see
#: ``tiling.TileGroup``): 2 x 2 tiles of 1024 px compute 5 % fewer pixels than one by one;
#: larger blocks gain little more and make the last calls of a job longer
GROUP_SIDE = 2


@dataclass
class ExecStats:
    """Counts and timings of an execution."""

    tiles: int = 0
    resumed_tiles: int = 0
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
            "resumed_tiles": self.resumed_tiles,
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
        stride: output stride of a patch classifier (None: the network's own).
        saliency: whether tiles also get their Grad-CAM saliency.
        picture: the quicklook's samples each tile takes (``outputs.picture_lattice``).
    """

    scenes: list[SceneInfo]
    grid: GeoBox
    aoi: BaseGeometry | None
    checkpoint: str
    bands: int
    threshold: float = 0.5
    stride: int | None = None
    saliency: bool = False
    picture: PictureLattice | None = None

    def predictor(self, device: str = "auto", threads: int | None = None) -> TilePredictor:
        """The model every tile of the job runs through, loaded on ``device``."""
        from .predict import TilePredictor  # torch: only where the model runs

        return TilePredictor(
            self.checkpoint,
            device=device,
            threads=threads,
            threshold=self.threshold,
            stride=self.stride,
            saliency=self.saliency,
        )

    def read(self, tile: Tile) -> TileInput:
        return read_tile(tile, self.scenes, self.grid, self.bands, self.aoi)

    def read_group(self, group: TileGroup) -> GroupInput:
        return read_group(group, self.scenes, self.grid, self.bands, self.aoi)

    def finish(self, items: list[TileInput], results: list[TileResult]) -> list[TileResult]:
        """Give each result (of ``items``, in their order) the polygons of its core
        (vectorizing's per-tile part) and its samples of the quicklook: the work done where
        the tile is in memory."""
        for item, r in zip(items, results, strict=True):
            r.pieces = encode_pieces(tile_pieces(r.tile, self.grid, r.mask, r.probabilities))
            if self.picture is not None:
                r.picture = self.picture.take(item)
        return results


def default_batch(device: str) -> int:
    """Tiles per forward pass: one on CPU (no gain there), four on a GPU."""
    return 4 if device.startswith("cuda") else 1


def group_side(device: str, work: Workload, batch: int | None) -> int:
    """Tiles per side of the groups run as one window: :data:`GROUP_SIDE` on CPU, one on a GPU
    (which takes batches of tiles instead), with an explicit ``batch`` of more than one tile,
    or with saliency (Grad-CAM is computed tile by tile)."""
    if device.startswith("cuda") or (batch or 1) > 1 or work.saliency:
        return 1
    return GROUP_SIDE


def execute_local(
    tiles: list[Tile],
    work: Workload,
    sink: Sink,
    *,
    device: str = "auto",
    batch: int | None = None,
    lattice: list[Tile] | None = None,
) -> ExecStats:
    """Read, predict and write every tile in this process: on CPU in groups cut from
    ``lattice`` (all the job's tiles; default ``tiles``), else ``batch`` tiles at a time."""
    start = time.perf_counter()
    retain_freed_memory()  # the stream's stripes: no fresh pages for every one
    predictor = work.predictor(device)
    stats = ExecStats(executor="local", device=str(predictor.device))
    side = group_side(str(predictor.device), work, batch)
    with progress(len(tiles), "tiles") as advance:

        def emit(items: list[TileInput], results: list[TileResult]) -> None:
            stats.empty_tiles += sum(item.empty for item in items)
            for result in work.finish(items, results):
                sink(result)
                _count(stats, result)
                advance(1)

        if side > 1:
            for group in group_tiles(lattice or tiles, side, tiles):
                read = work.read_group(group)
                emit(read.items, predictor.predict_group(read))
        else:
            size = batch or default_batch(str(predictor.device))
            for i in range(0, len(tiles), size):
                items = [work.read(tile) for tile in tiles[i : i + size]]
                emit(items, predictor.predict_batch(items))
    stats.seconds = time.perf_counter() - start
    return stats


class _PredictorActor:
    """A model held on one device; Ray instantiates it remotely."""

    def __init__(self, work: Workload, device: str, threads: int) -> None:
        retain_freed_memory()  # the stream's stripes: no fresh pages for every one
        self.work = work
        self.predictor = work.predictor(device, threads)

    def device(self) -> str:
        return str(self.predictor.device)

    def predict(self, *items: TileInput) -> list[TileResult]:
        # tiles come as separate arguments: Ray resolves top-level object refs only
        return self.work.finish(list(items), self.predictor.predict_batch(list(items)))

    def read_and_predict(self, *tiles: Tile) -> list[TileResult]:
        """Read the tiles here, then predict: on CPU nodes, where a separate read task would
        only compete with the model for the same cores (and copy every tile's pixels through
        the object store), the model's process reads its own tiles."""
        items = [self.work.read(tile) for tile in tiles]
        return self.work.finish(items, self.predictor.predict_batch(items))

    def read_and_predict_groups(self, *groups: TileGroup) -> list[TileResult]:
        """:meth:`read_and_predict` of groups of tiles: each group read and run through the
        network as one window; the results of the tiles the groups emit."""
        items: list[TileInput] = []
        results: list[TileResult] = []
        for group in groups:
            read = self.work.read_group(group)
            items += read.items
            results += self.predictor.predict_group(read)
        return self.work.finish(items, results)


def _read_task(tile: Tile, work: Workload) -> TileInput:
    return work.read(tile)


def execute_ray(
    tiles: list[Tile],
    work: Workload,
    sink: Sink,
    *,
    address: str | None = None,
    actors: int | None = None,
    batch: int | None = None,
    lattice: list[Tile] | None = None,
) -> ExecStats:
    """Fan the tiles out on Ray and hand each result to ``sink`` in the calling process.

    Inference runs in actors that each hold the model (one per GPU when the cluster has GPUs,
    else one single-threaded actor per CPU, or ``actors``), ``batch`` tiles per call. With
    GPUs, reading and reprojection run in CPU tasks that feed the actors; CPU actors read
    their own tiles, a group of them at a time (cut from ``lattice``, all the job's tiles:
    see :func:`group_side`). At most two calls per actor are in flight, and one call's results
    are being written, so memory is bounded by the tile size, not the scene. Failed tasks are retried by Ray; an actor
    that dies is restarted and its calls retried (a tile written twice is the same tile).
    """
    start = time.perf_counter()
    # the local Ray stops behind us, while the COGs and the sites are made
    with ray_session(address, stop_behind=True) as ray:
        from ray.exceptions import RayTaskError

        resources = ray.cluster_resources()
        n_actors, actor_opts, read_cpus, device = placement(
            int(resources.get("GPU", 0)), float(resources.get("CPU", 1)), actors
        )
        threads = 1
        if device == "cpu":
            # a CPU actor holds no CPU of Ray's accounting but computes with its share of its
            # node's cores (actors are spread over the nodes); Ray would set OMP_NUM_THREADS=1
            # in its process, which slows torch's own threads down
            nodes = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
            nodes = [c for c in nodes if c > 0]  # a head started with no CPUs runs no actor
            per_node = -(-n_actors // max(1, len(nodes)))
            threads = max(1, int(max(nodes, default=1)) // per_node)
            env = actor_env(ray, threads)
            if env:
                actor_opts["runtime_env"] = {"env_vars": env}
        actor_cls = ray.remote(max_restarts=2, max_task_retries=2, **actor_opts)(_PredictorActor)
        work_ref = ray.put(work)  # shipped once, not with every task
        # GPU actors get the model's part alone, by value: a small argument that Ray inlines,
        # so an actor restarted after its node died never needs an object that may have gone;
        # CPU actors read their own tiles and get the whole workload (owned by this driver)
        part = work if device == "cpu" else replace(work, scenes=[], aoi=None)
        pool = [actor_cls.remote(part, device, threads) for _ in range(n_actors)]
        read_remote = ray.remote(num_cpus=read_cpus, max_retries=3)(_read_task)
        stats = ExecStats(executor="ray", workers=n_actors, device=device)
        size = batch or default_batch(device)
        side = group_side(device, work, batch)
        # at most DEPTH calls (each of `size` tiles, or one group) per actor in flight, and one
        # call's results being written; between reading
        # and writing
        units: list[list[Any]] = (
            [[g] for g in group_tiles(lattice or tiles, side, tiles)]
            if side > 1
            else [tiles[i : i + size] for i in range(0, len(tiles), size)]
        )
        dispatch = Dispatch(units, n_actors)
        pending: dict[Any, int] = {}

        def submit(a: int) -> bool:
            chosen = dispatch.take(a)
            if chosen is None:
                return False
            actor = pool[a]
            if side > 1:
                pending[actor.read_and_predict_groups.remote(*chosen)] = a
            elif device == "cpu":
                pending[actor.read_and_predict.remote(*chosen)] = a
            else:  # GPU nodes: CPU read tasks keep the GPU fed
                items = [read_remote.remote(tile, work_ref) for tile in chosen]
                pending[actor.predict.remote(*items)] = a
            return True

        try:
            for _ in range(Dispatch.DEPTH):
                for a in range(n_actors):
                    submit(a)
            with progress(len(tiles), "tiles") as advance:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    a = pending.pop(ready[0])
                    dispatch.finished(a)
                    while submit(a):  # its next calls before this one's results are written
                        pass
                    results: list[TileResult] = ray.get(ready[0])
                    for result in results:
                        stats.empty_tiles += bool((result.mask == 255).all())
                        sink(result)
                        _count(stats, result)
                        advance(1)
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
