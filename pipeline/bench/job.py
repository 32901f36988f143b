"""The job end to end against its bare model, and the job's memory against scene size.

Scenes of N Mpx are VRT mosaics of one synthetic 25 Mpx scene at 1 m (k x k copies side by
side), so every size has the same content per pixel; the model is a patch classifier trained
with the ``patch`` defaults on a synthetic 1 m scene (or ``--model``). Each job is the real
command, ``wastewatch run --no-prefect`` (local Ray, plan to published outputs), timed from the
outside with the peak PSS of all its processes; the bare model is ``TilePredictor.heatmap`` on
a tile-sized input in this process, measured before and after the jobs.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from .procs import machine, measure

__all__ = ["bare_model", "bench_job", "mosaic"]

BASE_PX = 5000
GSD = 1.0


def _prepare(work: Path, model: str | None) -> tuple[Path, str]:
    base = work / "base"
    if not (base / "scene.tif").exists():
        measure(["synth", "scene", "--out", str(base), "--size", str(BASE_PX), "--gsd", str(GSD),
                 "--seed", "3", "--landfills", "60"])  # fmt: skip
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


def mosaic(scene: Path, k: int, out: Path) -> tuple[Path, Path]:
    """A VRT of ``k`` x ``k`` copies of ``scene`` side by side, and a GeoPackage AOI of it."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    out.mkdir(parents=True, exist_ok=True)
    with rasterio.open(scene) as src:
        w, h, t, crs, count = src.width, src.height, src.transform, src.crs, src.count
        nodata = src.nodata
    root = ET.Element("VRTDataset", rasterXSize=str(w * k), rasterYSize=str(h * k))
    ET.SubElement(root, "SRS").text = crs.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in t.to_gdal())
    for b in range(1, count + 1):
        band = ET.SubElement(root, "VRTRasterBand", dataType="Byte", band=str(b))
        if nodata is not None:  # the scene's nodata holds in the mosaic too
            ET.SubElement(band, "NoDataValue").text = repr(nodata)
        for i in range(k):
            for j in range(k):
                s = ET.SubElement(band, "SimpleSource")
                ET.SubElement(s, "SourceFilename", relativeToVRT="0").text = str(scene.resolve())
                ET.SubElement(s, "SourceBand").text = str(b)
                ET.SubElement(s, "SrcRect", xOff="0", yOff="0", xSize=str(w), ySize=str(h))
                ET.SubElement(s, "DstRect", xOff=str(j * w), yOff=str(i * h), xSize=str(w),
                              ySize=str(h))  # fmt: skip
    vrt = out / "scene.vrt"
    ET.ElementTree(root).write(vrt, encoding="utf-8")
    left, top = t.c, t.f
    aoi = out / "aoi.gpkg"
    outline = box(left, top + h * k * t.e, left + w * k * t.a, top)
    gpd.GeoDataFrame({"name": [f"{k}x{k}"]}, geometry=[outline], crs=crs.to_wkt()).to_file(aoi)
    return vrt, aoi


def bare_model(model: str, tile: int, device: str, seconds: float = 15.0) -> dict[str, Any]:
    """The model alone: forward passes over a ``tile`` x ``tile`` input, Mpx/s of input."""
    import torch

    from ..job.predict import TilePredictor

    predictor = TilePredictor(model, device=device)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (len(predictor.card.bands), tile, tile)).astype(np.float32)
    valid = np.ones((tile, tile), bool)
    sync = torch.cuda.synchronize if predictor.device.type == "cuda" else (lambda: None)
    for _ in range(2):
        predictor.heatmap(x, valid)
    sync()
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        predictor.heatmap(x, valid)
        sync()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "input_px": [tile, tile],
        "passes": len(times),
        "median_s": round(median, 4),
        "megapixels_per_second": round(tile * tile / 1e6 / median, 3),
    }


def bench_job(
    work: Path,
    sizes: list[int],
    device: str = "cpu",
    model: str | None = None,
    tile_size: int = 1024,
) -> dict[str, Any]:
    """Jobs of each size in Mpx (rounded to whole mosaics), with the bare model around them."""
    work.mkdir(parents=True, exist_ok=True)
    scene, model = _prepare(work, model)
    model_path = Path(model)
    card = json.loads((model_path / "card.json").read_text())
    before = bare_model(model, tile_size, device)
    jobs = []
    for mpx in sizes:
        k = max(1, round(math.sqrt(mpx / (BASE_PX * BASE_PX / 1e6))))
        vrt, aoi = mosaic(scene, k, work / f"mosaic-{k}x{k}")
        out = work / f"job-{k}x{k}"
        # --device cpu on a GPU machine: hide the GPU from the job
        env = {"CUDA_VISIBLE_DEVICES": ""} if device == "cpu" else None
        run = measure(["run", "--no-prefect", "--aoi", str(aoi), "--scenes", str(vrt),
                       "--model", model, "--out", str(out), "--overwrite",
                       "--tile-size", str(tile_size)], env)  # fmt: skip
        record = json.loads((out / "run.json").read_text())
        px = record["grid"]["width"] * record["grid"]["height"]
        jobs.append(
            {
                "grid_megapixels": round(px / 1e6, 1),
                "scene": f"{k} x {k} mosaic of a {BASE_PX} px synthetic 1 m scene (VRT)",
                "seconds": run["seconds"],
                "megapixels_per_second": round(px / 1e6 / run["seconds"], 3),
                "peak_pss_gb": run["peak_pss_gb"],
                "timings_s": record["timings_s"],
                "execution": record["execution"],
                "detections": record["detections"],
            }
        )
    after = bare_model(model, tile_size, device)
    bare = (before["megapixels_per_second"] + after["megapixels_per_second"]) / 2
    for job in jobs:
        job["ratio_to_bare_model"] = round(job["megapixels_per_second"] / bare, 3)
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
        "bare_model": {"before": before, "after": after, "megapixels_per_second": round(bare, 3)},
        "jobs": jobs,
        "throughput": {
            "what": "job Mpx/s (command wall time: start-up, plan, Ray, tiles, COGs, "
            "vectorizing, publishing) over the bare model's Mpx/s, largest scene",
            "ratio": large["ratio_to_bare_model"],
            "goal": 0.8 if device == "cpu" else 0.7,
        },
        "memory": {
            "what": "peak PSS of all the job's processes, largest over smallest scene",
            "ratio": round(large["peak_pss_gb"] / small["peak_pss_gb"], 3),
            "largest_gb": large["peak_pss_gb"],
            "goal": {"ratio": 1.25, "largest_gb": 3.0},
        },
    }
