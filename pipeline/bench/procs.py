"""Measuring commands: wall time and the peak memory (PSS) of every process they start, and a
description of the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["machine", "measure"]


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _ray_pids() -> list[int]:
    """Ray's own processes (Ray starts some detached from the command's tree)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"ray" in cmd and any(k in cmd for k in (b"raylet", b"default_worker", b"gcs_server")):
            pids.append(int(p))
    return pids


def measure(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``wastewatch -q ARGS``: its wall seconds, the peak PSS (GB) of all its processes
    (Ray's included), its stdout; raises ``RuntimeError`` with stderr when it fails."""
    environ = {**os.environ, **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "-q", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    peak = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            pids = set(_tree(proc.pid)) | set(_ray_pids())
            peak = max(peak, sum(_pss_kb(p) for p in pids))
            stop.wait(0.25)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"wastewatch {' '.join(args)} failed ({proc.returncode}): {err}")
    return {"seconds": round(seconds, 2), "peak_pss_gb": round(peak / 1e6, 3), "stdout": out}


def machine(device: str = "cpu") -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_gb, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
