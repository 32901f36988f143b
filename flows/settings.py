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
    # the ephemeral server's first start in a new PREFECT_HOME migrates its database: 25 s on
    # an idle 2-core machine, past Prefect's 20 s default on a busy one
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
