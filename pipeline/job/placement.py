"""Where a job's Ray work goes: how many model actors with which options, what environment a
CPU actor needs, and which calls go to which actor."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..cluster import bounded_gdal_cache, workers_env
from ..errors import warn

__all__ = ["Dispatch", "actor_env", "placement"]


def actor_env(ray: Any, threads: int) -> dict[str, str]:
    """The environment variables a CPU actor needs beyond those of the job's workers: none
    when the session's workers have GDAL's cache bounded already (``cluster.workers_env``:
    Ray sessions started by ``pipeline.cluster`` do) and the actor computes on one thread (a
    worker's ``OMP_NUM_THREADS`` is 1 then, or what the driver's environment says, and the
    predictor sets torch's threads itself). An actor with a runtime environment of its own
    cannot take one of the workers Ray starts beside a new session: it waits for a new Python
    process (measured on 2 cores: ready in 2.1 s instead of 0.6 s)."""
    cache = bounded_gdal_cache()
    if threads == 1 and workers_env(ray).get("GDAL_CACHEMAX") == cache:
        return {}
    return {"OMP_NUM_THREADS": str(threads), "GDAL_CACHEMAX": cache}


def placement(gpus: int, cpus: float, actors: int | None) -> tuple[int, dict[str, Any], float, str]:
    """How many model actors, with which Ray options, and the CPUs of one read task.

    With GPUs: one actor per GPU (or ``actors``, at most the GPUs: an actor asking for a GPU
    that does not exist waits forever). On CPUs only: one actor per CPU (or ``actors``, at
    most the CPUs), each reading its own tiles and computing with its share of its node's
    cores (one thread by default). Single-threaded models, one per core, get more from a node
    than one model on all its threads (no thread waits for another at the end of every
    layer), and a core that reads or writes holds up one model, not all. CPU actors reserve no CPU in Ray's accounting (they are spread over
    the nodes instead): jobs sharing a cluster (a survey) then never wait for each other's
    actors.

    Returns:
        ``(actors, actor options, CPUs per read task, device)``.
    """
    if gpus:
        n = min(actors or gpus, gpus)
        if actors and actors > gpus:
            warn(f"--actors {actors} is more than the cluster's {gpus} GPU(s): using {gpus}")
        return n, {"num_gpus": 1, "num_cpus": 1}, 1.0, "cuda"
    most = max(1, int(cpus))
    n = actors or most
    if n > most:
        warn(f"--actors {n} is more than the cluster's {cpus:g} CPUs: using {most} actor(s)")
        n = most
    return n, {"num_cpus": 0, "scheduling_strategy": "SPREAD"}, min(1.0, cpus / 2), "cpu"


class Dispatch:
    """Which calls go to which actor: each actor works through its own contiguous run of the
    tiles (row-major neighbours share scene blocks its process has decoded already), two calls
    deep so it never waits for the driver; an actor whose run is done takes the far end of the
    longest run left. The last calls (no more left than actors) go one at a time to actors
    with none in flight: queued behind a busy actor's call, one would keep it busy while
    another actor has nothing to do (the job's tail)."""

    DEPTH = 2

    def __init__(self, batches: list[list[Any]], actors: int) -> None:
        per = -(-len(batches) // actors) if batches else 0
        self.runs = [deque(batches[i * per : (i + 1) * per]) for i in range(actors)]
        self.in_flight = [0] * actors

    def next_for(self, actor: int) -> list[Any] | None:
        if self.runs[actor]:
            return self.runs[actor].popleft()
        longest = max(self.runs, key=len)
        return longest.pop() if longest else None

    def left(self) -> int:
        """Calls not yet given to an actor."""
        return sum(len(run) for run in self.runs)

    def take(self, actor: int) -> list[Any] | None:
        """The next call for ``actor``, or None when it should get none now: it has
        :attr:`DEPTH` in flight, or one while no more calls are left than actors."""
        busy = self.in_flight[actor]
        if busy >= self.DEPTH or (busy and self.left() <= len(self.runs)):
            return None
        chosen = self.next_for(actor)
        if chosen is not None:
            self.in_flight[actor] += 1
        return chosen

    def finished(self, actor: int) -> None:
        """One of ``actor``'s calls has returned."""
        self.in_flight[actor] -= 1
