"""Progress reporting: a bar on a terminal, periodic log lines elsewhere (CI, Prefect logs)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress"]

log = logging.getLogger("wastewatch")


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a rich bar when stderr is a terminal, else logs every 10 %."""

    def ignore(n: int = 1) -> None:
        pass

    if total <= 0:
        yield ignore
        return
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total)

            def draw(n: int = 1) -> None:
                bar.advance(task, n)

            yield draw
        return
    done = 0
    next_report = 0.1
    start = time.perf_counter()

    def advance(n: int = 1) -> None:
        nonlocal done, next_report
        done += n
        if done / total >= next_report or done == total:
            log.info(
                "%s: %d/%d (%.0f %%, %.1f s)",
                description,
                done,
                total,
                100 * done / total,
                time.perf_counter() - start,
            )
            while next_report <= done / total:
                next_report += 0.1

    yield advance
