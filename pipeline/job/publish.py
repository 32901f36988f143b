"""Atomic outputs: a job writes into a hidden staging folder renamed into place at the end."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OutputExistsError, warn
from ..version import code_version

if TYPE_CHECKING:
    from .plan import JobPlan

__all__ = ["check_output", "resume_key", "staging"]

log = logging.getLogger("wastewatch")


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


def resume_key(plan: JobPlan) -> str:
    """What a job's finished tiles depend on, hashed: the tile lattice (its ids), the model's
    weights, the inputs as files (path, size, modification time) and the parameters that change
    pixels. A staging folder is named after it, so a resumed run continues only the same job."""
    r = plan.request

    def stamp(path: str) -> list[object]:
        try:
            st = os.stat(path)
        except OSError:
            return [path]
        return [os.path.abspath(path), st.st_size, st.st_mtime_ns]

    key = {
        "code": code_version(),
        "tiles": [t.id for t in plan.tiles],
        "card": plan.card.to_json(),  # weights' hash, normalization, bands, classes, geometry
        # a GDAL URI cannot be stat'ed: what GDAL says of it stands in for its file stamp
        "scenes": [[*stamp(s.path), repr(s)] for s in plan.scenes],
        "aoi": stamp(r.aoi),
        "select": list(r.select),
        "threshold": r.threshold,
        "stride": r.stride,
        "saliency": r.saliency,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def staging(
    out: str | os.PathLike[str],
    overwrite: bool = False,
    key: str | None = None,
    resume: bool = False,
) -> Iterator[Path]:
    """A staging folder beside ``out``, renamed to ``out`` when the block succeeds.

    Without ``key`` the folder is new and removed on any exception: ``out`` is untouched and
    nothing is left behind. With ``key`` (see :func:`resume_key`) the folder is
    ``.NAME.partial-KEY``: with ``resume`` an existing one is continued (its finished tiles are
    kept), without it started afresh; on failure it is kept when it holds finished tiles, so
    that ``--resume`` can continue it (the published ``out`` is still untouched). Staging
    folders of other keys (another job to the same ``out``) are removed once this one is
    published. One run at a time writes ``out`` (a lock beside it). With ``overwrite`` an
    existing ``out`` is replaced only after the new one is complete. The ``work`` subfolder
    (intermediate files) is dropped before publishing.
    """
    target = check_output(out, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target):
        umask = os.umask(0)
        os.umask(umask)
        others: list[Path] = []
        if key is None:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        else:
            tmp = target.parent / f".{target.name}.partial-{key}"
            others = [p for p in target.parent.glob(f".{target.name}.partial-*") if p != tmp]
            if tmp.exists() and not resume:
                shutil.rmtree(tmp)
            elif tmp.exists():
                log.info("resuming the job from %s", tmp)
            elif resume and any(_finished_tiles(p) for p in others):
                warn(
                    f"the finished tiles kept beside {target} are of other inputs or parameters "
                    "and cannot be continued: this run starts afresh (they are removed once it "
                    "succeeds)"
                )
            tmp.mkdir(exist_ok=True)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the published folder is not
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
            for stale in others:  # staging folders of other runs to the same output
                shutil.rmtree(stale, ignore_errors=True)
        except BaseException:
            if key is not None and _finished_tiles(tmp):
                log.warning(
                    "the job stopped; its finished tiles are kept in %s: run it again with "
                    "--resume to continue from them",
                    tmp,
                )
            else:
                shutil.rmtree(tmp, ignore_errors=True)
            raise


@contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``target`` for the block: one run at a time writes an output
    (two would write the same staging folder); another gets a clear error at once."""
    lock = target.parent / f".{target.name}.lock"
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputExistsError(
                f"another run is writing {target} now: wait for it to finish, or choose "
                "another --out"
            ) from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # still held: nobody can have taken it meanwhile
            fcntl.flock(handle, fcntl.LOCK_UN)


def _finished_tiles(stage: Path) -> bool:
    ledger = stage / "work" / "ledger.txt"
    return ledger.exists() and ledger.stat().st_size > 0
