"""Progress reporting: a bar on a terminal, periodic log lines elsewhere (CI, Prefect logs).

Both show the time left. Nothing is drawn when the ``wastewatch`` logger is quieter than INFO
(``wastewatch -q``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress"]

log = logging.getLogger("wastewatch")


def _eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


@contextmanager
def progress(total: float, description: str) -> Iterator[Callable[[float], None]]:
    """Yield ``advance(n)`` (``n`` may be a fraction); draws a rich bar with the time remaining
    when stderr is a terminal, else logs every 10 % with an ETA."""

    def ignore(n: float = 1) -> None:
        pass

    if total <= 0 or not log.isEnabledFor(logging.INFO):
        yield ignore
        return
    if sys.stderr.isatty():
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            TaskProgressColumn(),
            "ETA",
            TimeRemainingColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total)

            def draw(n: float = 1) -> None:
                bar.advance(task, n)

            yield draw
        return
    done = 0.0
    next_report = 0.1
    start = time.perf_counter()

    def advance(n: float = 1) -> None:
        nonlocal done, next_report
        done += n
        share = min(1.0, done / total)
        if share >= next_report - 1e-9:
            elapsed = time.perf_counter() - start
            log.info(
                "%s: %.0f %% (%s elapsed, ETA %s)",
                description,
                100 * share,
                _eta(elapsed),
                _eta(elapsed / share * (1 - share)),
            )
            while next_report <= share + 1e-9:
                next_report += 0.1

    yield advance
