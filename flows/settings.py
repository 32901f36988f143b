"""Prefect settings of wastewatch: where its state lives and what reaches the terminal.

Set before Prefect is imported (Prefect reads its settings and logging configuration then).
"""

from __future__ import annotations

import os

from pipeline.cluster import state_dir

__all__ = ["prefect_environment"]


def prefect_environment() -> None:
    """Point Prefect's ephemeral mode at the project's state folder, and keep Prefect's own
    console output (its tracebacks included) off the terminal: the command line prints one line
    per outcome, and the full logs still go to the Prefect API (the UI shows them).

    Operators' own ``PREFECT_*`` settings win.
    """
    home = state_dir() / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
