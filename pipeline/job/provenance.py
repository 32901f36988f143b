"""``run.json``: what a job read, with what model and code, and what it took."""

from __future__ import annotations

import functools
import json
import os
import platform
import threading
from pathlib import Path
from typing import Any

from models.checkpoint import file_sha256

from ..version import code_version
from .execute import ExecStats
from .plan import JobPlan

__all__ = ["RUN_JSON", "RUN_SCHEMA_VERSION", "input_sha256", "write_provenance"]

RUN_JSON = "run.json"
#: version of the run.json layout.
RUN_SCHEMA_VERSION = 1


#: one lock per file: a thread asking for a hash another is computing waits and finds it kept
_HASHING: dict[str, threading.Lock] = {}
_HASHING_LOCK = threading.Lock()


def input_sha256(path: str) -> str | None:
    """The hash of a local input file; None for URIs (hashing would download them). Computed
    once per file version in a process (a survey's jobs share their scenes), also when
    threads ask at once."""
    if "://" in path or path.startswith("/vsi") or not os.path.isfile(path):
        return None
    st = os.stat(path)
    real = os.path.realpath(path)
    with _HASHING_LOCK:
        lock = _HASHING.setdefault(real, threading.Lock())
    with lock:
        return _sha256(real, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def write_provenance(
    plan: JobPlan, stage: str | os.PathLike[str], stats: ExecStats, detections: int
) -> Path:
    """Write ``run.json``: inputs and hashes, model, code version, parameters, timings."""
    r = plan.request
    doc: dict[str, Any] = {
        "schema_version": RUN_SCHEMA_VERSION,
        "wastewatch": code_version(),
        "python": platform.python_version(),
        "inputs": {
            "aoi": {"path": r.aoi, "sha256": input_sha256(r.aoi), "select": list(r.select)},
            "scenes": [
                {"path": s.path, "sha256": input_sha256(s.path), "acquired": s.acquired or None}
                for s in plan.scenes
            ],
            "model": {
                "path": r.model,
                "model_id": plan.card.model_id,
                "arch": plan.card.arch,
                "content_hash": plan.card.content_hash,
            },
        },
        "parameters": r.model_dump(mode="json", exclude={"aoi", "scenes", "model"}),
        "grid": plan.grid.to_dict(),
        "tiles": {
            "planned": len(plan.tiles),
            "empty": stats.empty_tiles,
            "core_px": max(int(plan.tiles[0].core.width), int(plan.tiles[0].core.height)),
            "halo_px": plan.card.halo,
        },
        # the heatmap actually computed: --stride (or the network's own), and where cells sit
        "heatmap": {
            "stride_px": plan.card.output_stride,
            "offset_px": plan.card.offset,
            "receptive_field_px": plan.card.receptive_field,
            "saliency": r.saliency,
        },
        "detections": detections,
        "execution": stats.to_dict(),
        "timings_s": dict(plan.timings),
    }
    path = Path(stage) / RUN_JSON
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path
