"""Atomic outputs: a job writes into a hidden staging folder renamed into place at the end."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputExistsError

__all__ = ["check_output", "staging"]


def check_output(out: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing output folder unless ``overwrite``; returns the path."""
    path = Path(out)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output folder {path} already exists: choose another --out or pass --overwrite"
        )
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output {path} exists and is not a folder: choose another --out")
    return path


@contextmanager
def staging(out: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """A staging folder beside ``out``, renamed to ``out`` when the block succeeds.

    On any exception the staging folder is removed and ``out`` is untouched: a failed job leaves
    no partial output. With ``overwrite`` an existing ``out`` is replaced only after the new one
    is complete. The ``work`` subfolder (intermediate files) is dropped before publishing.
    """
    target = check_output(out, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the published folder is an ordinary one
    try:
        yield tmp
        work = tmp / "work"
        if work.exists():
            shutil.rmtree(work)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / target.name)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
