"""The job end to end against its bare model, and the job's memory against scene size.

Every job reads one synthetic 1 m scene as large as the largest size asked for (no two parts
alike: a scene of repeated copies would hand the later copies' blocks from GDAL's cache); a
job of N Mpx covers its top-left sqrt(N) km square. The model is a patch classifier trained
with the ``patch`` defaults on a synthetic 1 m scene (or ``--model``). Each job is the real
command, ``wastewatch run --no-prefect`` (local Ray, plan to published outputs), timed from the
outside with the peak PSS of all its processes. The bare model is ``TilePredictor.heatmap`` on
a tile-sized input, measured before and after the jobs: the network's own forward pass in this
process on all cores, sustained over as many Mpx as the largest job (the measure the goal is
set against: a job's rate is its pixels over its whole time, and on a shared machine a short
measurement catches one moment of a speed that moves), and as a 15 s median; on CPUs, also as one
single-threaded model per core side by side (what the job's actors do). Both are measured a
second time with the network row-streamed (``models.row_streamed``, the way the job's CPU actors
evaluate it): the job's ratio to those is what the job itself costs beyond its model.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .procs import machine, measure

__all__ = ["bare_model", "bare_model_per_core", "bench_job", "corner_aoi"]

GSD = 1.0
#: planted sites per Mpx of the benchmark scene (60 in a 25 Mpx scene)
SITES_PER_MPX = 2.4


def _prepare(work: Path, model: str | None, side: int) -> tuple[Path, str]:
    base = work / f"scene-{side}"
    if not (base / "scene.tif").exists():
        measure(["synth", "scene", "--out", str(base), "--size", str(side), "--gsd", str(GSD),
                 "--seed", "3", "--landfills", str(round(SITES_PER_MPX * side * side / 1e6))])  # fmt: skip
    if model is None:
        model = str(work / "model")
        if not (work / "model" / "card.json").exists():
            train = work / "train"
            if not (train / "scene.tif").exists():
                measure(["synth", "scene", "--out", str(train), "--size", "2048", "--gsd",
                         str(GSD), "--seed", "1", "--landfills", "150"])  # fmt: skip
            measure(["train", "--arch", "patch", "--scenes", str(train / "scene.tif"),
                     "--labels", str(train / "truth.geojson"), "--out", model, "--seed", "0"])  # fmt: skip
    return base / "scene.tif", model


def corner_aoi(scene: Path, side: int, out: Path) -> Path:
    """A GeoPackage AOI of the ``side`` x ``side`` pixels at the scene's top-left corner."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(scene) as src:
        t, crs = src.transform, src.crs
        side = min(side, src.width, src.height)
    outline = box(t.c, t.f + side * t.e, t.c + side * t.a, t.f)
    gpd.GeoDataFrame({"name": [f"{side} px"]}, geometry=[outline], crs=crs.to_wkt()).to_file(out)
    return out


def bare_model(
    model: str,
    tile: int,
    device: str,
    seconds: float = 15.0,
    threads: int | None = None,
    streamed: bool = False,
    megapixels: float | None = None,
) -> dict[str, Any]:
    """The model alone: forward passes over a ``tile`` x ``tile`` input, Mpx/s of input
    (``threads``: torch's CPU threads, default all cores; ``streamed``: row-streamed, as the
    job's CPU actors run it, else the network's own forward pass).

    By default it runs for ``seconds`` and gives the median pass. With ``megapixels``, it is
    sustained: passes until that many Mpx of input are through (as many as a job's grid), and
    the rate is all of them over all their time, the way a job's rate is taken.
    """
    import torch

    from ..job.predict import TilePredictor

    predictor = TilePredictor(model, device=device, threads=threads, streamed=streamed)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (len(predictor.card.bands), tile, tile)).astype(np.float32)
    valid = np.ones((tile, tile), bool)
    sync = torch.cuda.synchronize if predictor.device.type == "cuda" else (lambda: None)
    for _ in range(2):
        predictor.heatmap(x, valid)
    sync()
    px = tile * tile / 1e6
    times: list[float] = []
    passes = max(5, math.ceil(megapixels / px)) if megapixels is not None else 5
    start = time.perf_counter()
    end = start + (seconds if megapixels is None else 0.0)
    while len(times) < passes or time.perf_counter() < end:
        t0 = time.perf_counter()
        predictor.heatmap(x, valid)
        sync()
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    median = statistics.median(times)
    out: dict[str, Any] = {
        "input_px": [tile, tile],
        "passes": len(times),
        "median_s": round(median, 4),
        "megapixels_per_second": round(px / median, 3),
    }
    if megapixels is not None:
        out["seconds"] = round(total, 2)
        out["megapixels_per_second"] = round(px * len(times) / total, 3)
        out["fastest_10s_megapixels_per_second"] = round(_fastest_window(times, px, 10.0), 3)
    return out


def _fastest_window(times: list[float], px: float, seconds: float) -> float:
    """The best Mpx/s over any run of consecutive passes lasting at least ``seconds`` (what a
    short measurement could have caught)."""
    best, i, run = 0.0, 0, 0.0
    for j, t in enumerate(times):
        run += t
        while run - times[i] >= seconds:
            run -= times[i]
            i += 1
        if run >= seconds:
            best = max(best, px * (j - i + 1) / run)
    return best or px * len(times) / sum(times)


def bare_model_per_core(
    model: str, tile: int, seconds: float = 15.0, streamed: bool = False
) -> dict[str, Any]:
    """One single-threaded bare model per core, all at once, each in its own process: the sum
    of their Mpx/s."""
    code = (
        "import json, sys; from pipeline.bench.job import bare_model; "
        "print(json.dumps(bare_model(sys.argv[1], int(sys.argv[2]), 'cpu', "
        "float(sys.argv[3]), threads=1, streamed=sys.argv[4] == '1')))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cores = len(os.sched_getaffinity(0))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, model, str(tile), str(seconds), str(int(streamed))],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(cores)
    ]
    each = [json.loads(p.communicate()[0]) for p in procs]
    return {
        "processes": cores,
        "each_megapixels_per_second": [e["megapixels_per_second"] for e in each],
        "megapixels_per_second": round(sum(e["megapixels_per_second"] for e in each), 3),
    }


def bench_job(
    work: Path,
    sizes: list[int],
    device: str = "cpu",
    model: str | None = None,
    tile_size: int = 1024,
    repeat: int = 1,
) -> dict[str, Any]:
    """Jobs of each size in Mpx over one scene (each ``repeat`` times, the fastest counting),
    with the bare model measured around them (the better of before and after counting: on a
    shared machine noise only slows things down)."""
    work.mkdir(parents=True, exist_ok=True)
    sides = [round(math.sqrt(mpx) * 1000 / GSD) for mpx in sizes]
    scene, model = _prepare(work, model, max(sides))
    model_path = Path(model)
    card = json.loads((model_path / "card.json").read_text())
    cpu = device == "cpu"

    # the goal's reference is sustained, as long as the largest job's grid: on a shared
    # machine the rate moves by a quarter from one 10 s window to the next, and a 15 s median
    # (kept for the other variants) measures one such moment, a job all of them
    sustained = max(sizes)

    def bare() -> dict[str, Any]:
        out = {
            "sustained": bare_model(model, tile_size, device, megapixels=sustained),
            "all_cores": bare_model(model, tile_size, device),
        }
        if cpu:
            out["per_core"] = bare_model_per_core(model, tile_size)
            out["all_cores_streamed"] = bare_model(model, tile_size, device, streamed=True)
            out["per_core_streamed"] = bare_model_per_core(model, tile_size, streamed=True)
        return out

    before = bare()
    runs: dict[int, list[dict[str, Any]]] = {side: [] for side in sides}
    for _ in range(repeat):
        for side in sides:
            aoi = corner_aoi(scene, side, work / f"aoi-{side}.gpkg")
            out = work / f"job-{side}"
            # --device cpu on a GPU machine: hide the GPU from the job
            env = {"CUDA_VISIBLE_DEVICES": ""} if cpu else None
            run = measure(["run", "--no-prefect", "--aoi", str(aoi), "--scenes", str(scene),
                           "--model", model, "--out", str(out), "--overwrite",
                           "--tile-size", str(tile_size)], env)  # fmt: skip
            record = json.loads((out / "run.json").read_text())
            px = record["grid"]["width"] * record["grid"]["height"]
            runs[side].append(
                {
                    "grid_megapixels": round(px / 1e6, 1),
                    "scene": f"the top-left {side} x {side} px of a synthetic 1 m scene",
                    "seconds": run["seconds"],
                    "megapixels_per_second": round(px / 1e6 / run["seconds"], 3),
                    "peak_pss_gb": run["peak_pss_gb"],
                    "timings_s": record["timings_s"],
                    "execution": record["execution"],
                    "detections": record["detections"],
                }
            )
    jobs = []
    for side in sides:
        fastest = dict(min(runs[side], key=lambda r: r["seconds"]))
        fastest["runs_s"] = [r["seconds"] for r in runs[side]]
        fastest["peak_pss_gb"] = max(r["peak_pss_gb"] for r in runs[side])  # memory: the worst
        jobs.append(fastest)
    after = bare()

    def best(key: str) -> float:
        return max(before[key]["megapixels_per_second"], after[key]["megapixels_per_second"])

    reference = best("sustained")
    others = [
        "all_cores",
        *(["per_core", "all_cores_streamed", "per_core_streamed"] if cpu else []),
    ]
    rates = {key: best(key) for key in others}
    for job in jobs:
        job["ratio_to_bare_model"] = round(job["megapixels_per_second"] / reference, 3)
        for key, rate in rates.items():
            job[f"ratio_to_bare_model_{key}"] = round(job["megapixels_per_second"] / rate, 3)
    small, large = jobs[0], jobs[-1]
    return {
        "machine": machine(device),
        "model": {
            "arch": card["arch"],
            "arch_args": card["arch_args"],
            "gsd_m": card["gsd_m"],
            "halo_px": card.get("halo"),
        },
        "tile_size": tile_size,
        "bare_model": {
            "before": before,
            "after": after,
            "what": "TilePredictor.heatmap on one tile-sized input, Mpx/s of input, the better "
            "of before and after. sustained (the goal's reference): the network's own forward "
            "pass on all cores in one process, for as many Mpx as the largest job's grid, all "
            "passes over all their time (fastest_10s: its best 10 s). The others, each the "
            "median pass of 15 s: all_cores, the same pass; row-streamed "
            "(models.row_streamed, as the job's CPU actors evaluate it); in one process on all "
            "cores, or one single-threaded process per core",
            "megapixels_per_second": round(reference, 3),
            **{f"{key}_megapixels_per_second": round(rate, 3) for key, rate in rates.items()},
        },
        "jobs": jobs,
        "throughput": {
            "what": "job Mpx/s (command wall time: interpreter start, plan, Ray, tiles, COGs, "
            "vectorizing, quicklook, report, publishing; the fastest of the runs) over the bare "
            "model's sustained Mpx/s in one process on all cores (as many Mpx as the job; the "
            "better of before and after), largest scene",
            "ratio": large["ratio_to_bare_model"],
            **{f"ratio_to_bare_model_{key}": large[f"ratio_to_bare_model_{key}"] for key in rates},
            "goal": 0.8 if cpu else 0.7,
        },
        "memory": {
            "what": "peak PSS of all the job's processes, largest over smallest scene",
            "ratio": round(large["peak_pss_gb"] / small["peak_pss_gb"], 3),
            "largest_gb": large["peak_pss_gb"],
            "goal": {"ratio": 1.25, "largest_gb": 3.0},
        },
    }
