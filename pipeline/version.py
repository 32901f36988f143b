"""The installed version of wastewatch, plus the git commit when running from a checkout."""

from __future__ import annotations

import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["code_version", "package_version"]


def package_version() -> str:
    """The installed distribution's version (``unknown`` outside an installation)."""
    try:
        return version("wastewatch")
    except PackageNotFoundError:
        return "unknown"


@functools.cache
def code_version() -> str:
    """``VERSION+COMMIT`` in a git checkout, else ``VERSION``."""
    v = package_version()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{v}+{commit}" if commit else v
