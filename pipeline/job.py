"""An AOI job as plain functions: plan, infer, extract detections, record provenance.

``run_job`` runs them in order in this process; ``flows.job`` wires the same functions as
Prefect tasks. Nothing here imports Prefect.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
from pyproj import CRS
from shapely import union_all
from shapely.geometry.base import BaseGeometry

from models import ModelCard, load_checkpoint
from models.checkpoint import file_sha256

from .detections import AreaUnit, detections_frame, write_geojson, write_gpkg
from .errors import AOIError, CRSError, InputError
from .execute import ExecStats, Workload, execute_local, execute_ray
from .geobox import GeoBox, utm_crs_for
from .publish import check_output, staging
from .quicklook import quicklook
from .rasters import RasterWriter, work_rasters
from .scenes import SceneInfo, open_scenes
from .tiling import Tile, plan_tiles
from .vectorize import vectorize
from .vectors import CODE_FIELDS, NAME_FIELDS, aoi_union, read_vectors, select_features

__all__ = [
    "JobPlan",
    "JobRequest",
    "extract_detections",
    "infer",
    "plan_job",
    "run_job",
    "write_provenance",
]

log = logging.getLogger("wastewatch")
DETECTIONS_GEOJSON = "detections.geojson"
DETECTIONS_GPKG = "detections.gpkg"
RUN_JSON = "run.json"
QUICKLOOK = "quicklook.png"


@dataclass(frozen=True)
class JobRequest:
    """What an operator asks for (the CLI flags and the flow parameters).

    Attributes:
        aoi: AOI vector file (any CRS; GeoJSON is WGS 84).
        scenes: scene files or GDAL URIs.
        model: checkpoint folder.
        out: output folder (must not exist unless ``overwrite``).
        select: codes of AOI features to keep (e.g. ISTAT municipality codes).
        tile_size: tile core side, pixels.
        threshold: probability from which a pixel is a detection.
        min_area_m2: smallest site kept.
        crs: output CRS (``EPSG:N``); default the AOI's UTM zone.
        ray_address: Ray cluster address; default a local Ray.
        executor: ``"ray"``, or ``"local"`` to run every tile in this process.
        actors: model actors (default one per GPU, or one on CPU).
        overwrite: replace ``out`` if it exists (only once the new output is complete).
        survey_date: date written into the detections.
    """

    aoi: str
    scenes: tuple[str, ...]
    model: str
    out: str
    select: tuple[str, ...] = ()
    tile_size: int = 1024
    threshold: float = 0.5
    min_area_m2: float = 50.0
    crs: str | None = None
    ray_address: str | None = None
    executor: Literal["ray", "local"] = "ray"
    actors: int | None = None
    overwrite: bool = False
    survey_date: str | None = None


@dataclass
class JobPlan:
    """A checked request: the model card, scenes, output grid, AOI and tiles."""

    request: JobRequest
    card: ModelCard
    scenes: list[SceneInfo]
    grid: GeoBox
    aoi: BaseGeometry
    units: list[AreaUnit]
    tiles: list[Tile]
    timings: dict[str, float] = field(default_factory=dict)


def plan_job(request: JobRequest) -> JobPlan:
    """Check every input and plan the tiles. All bad input is reported here, before any work.

    Raises:
        WastewatchError subclasses with a message naming the problem and the fix.
    """
    start = time.perf_counter()
    if not 0 < request.threshold < 1:
        raise InputError(f"--threshold must be between 0 and 1, got {request.threshold}")
    check_output(request.out, request.overwrite)
    _, card = load_checkpoint(request.model)  # a full load: weights are checked against the card
    if card.gsd_m <= 0:
        raise InputError(
            f"the model card of {request.model} gives no GSD: set gsd_m (metres per "
            "pixel the model was trained at) in its card.json"
        )
    aoi_frame = select_features(read_vectors(request.aoi, "AOI"), list(request.select), "AOI")
    scenes = open_scenes(list(request.scenes), len(card.bands))
    if request.crs:
        try:
            crs = CRS.from_user_input(request.crs)
        except Exception:
            raise CRSError(
                f"--crs {request.crs} is not a CRS: give EPSG:N (e.g. EPSG:32632)"
            ) from None
    else:
        c = aoi_frame.to_crs(4326).union_all().centroid
        crs = utm_crs_for(c.x, c.y)
    aoi = aoi_union(aoi_frame, crs)
    coverage = union_all([s.footprint(crs) for s in scenes])
    area = aoi.intersection(coverage)
    if area.is_empty or area.area <= 0:
        names = ", ".join(Path(s.path).name for s in scenes)
        raise AOIError(
            f"the AOI {request.aoi} does not overlap the scenes ({names}): check that "
            "the AOI and scenes cover the same place"
        )
    grid = GeoBox.from_bounds(area.bounds, card.gsd_m, crs)
    tiles = plan_tiles(grid, request.tile_size, card.halo, card.align or card.output_stride, area)
    units = _area_units(aoi_frame, crs)
    plan = JobPlan(request, card, scenes, grid, area, units, tiles)
    plan.timings["plan_s"] = round(time.perf_counter() - start, 3)
    log.info(
        "planned %d tiles of %d px over a %d x %d grid (%s, %.2f m)",
        len(tiles),
        request.tile_size,
        grid.width,
        grid.height,
        crs.to_string(),
        grid.resolution,
    )
    return plan


def _area_units(frame: gpd.GeoDataFrame, crs: CRS) -> list[AreaUnit]:
    code_field = next((f for f in CODE_FIELDS if f in frame.columns), None)
    name_field = next((f for f in NAME_FIELDS if f in frame.columns), None)
    projected = frame.to_crs(crs)
    units = []
    for _, row in projected.iterrows():
        code = str(row[code_field]) if code_field and row[code_field] is not None else None
        name = str(row[name_field]) if name_field and row[name_field] is not None else None
        units.append(AreaUnit(code, name, row.geometry))
    return units


def infer(plan: JobPlan, stage: str | os.PathLike[str]) -> ExecStats:
    """Run the model over every tile and write ``probabilities.tif`` and ``mask.tif`` (COGs)."""
    start = time.perf_counter()
    r = plan.request
    with RasterWriter(stage, plan.grid, plan.card.classes) as writer:
        work = Workload(
            plan.scenes, plan.grid, plan.aoi, r.model, len(plan.card.bands), r.threshold
        )
        if r.executor == "local":
            stats = execute_local(plan.tiles, work, writer.write)
        else:
            stats = execute_ray(
                plan.tiles, work, writer.write, address=r.ray_address, actors=r.actors
            )
    plan.timings["infer_s"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    writer.finish()
    plan.timings["cog_s"] = round(time.perf_counter() - start, 3)
    return stats


def extract_detections(plan: JobPlan, stage: str | os.PathLike[str]) -> int:
    """Vectorize the mask into ranked sites; write GeoJSON and GeoPackage. Returns the count."""
    start = time.perf_counter()
    folder = Path(stage)
    probabilities, mask = work_rasters(folder)
    sites = vectorize(
        mask,
        probabilities,
        plan.tiles,
        plan.grid,
        plan.card.classes,
        plan.aoi,
        min_area_m2=plan.request.min_area_m2,
    )
    frame = detections_frame(
        sites,
        plan.grid.crs,
        plan.card.classes,
        plan.units,
        plan.card.model_id,
        plan.request.survey_date,
    )
    write_geojson(frame, folder / DETECTIONS_GEOJSON)
    write_gpkg(frame, folder / DETECTIONS_GPKG)
    # a picture for people: the newest scene, decimated, with the AOI and the sites outlined
    scene = plan.scenes[0]
    scene_crs = CRS.from_wkt(scene.crs)
    sites = list(frame.to_crs(scene_crs).geometry) if len(frame) else []
    aoi = gpd.GeoSeries([plan.aoi], crs=plan.grid.crs).to_crs(scene_crs)
    quicklook(
        scene.path,
        folder / QUICKLOOK,
        [(list(aoi), (255, 255, 0)), (sites, (255, 0, 40))],
        max_size=1200,
    )
    plan.timings["vectorize_s"] = round(time.perf_counter() - start, 3)
    return len(frame)


def _sha256(path: str) -> str | None:
    """The hash of a local input file; None for URIs (hashing would download them)."""
    if "://" in path or path.startswith("/vsi") or not os.path.isfile(path):
        return None
    return file_sha256(path)


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("wastewatch")
    except PackageNotFoundError:
        v = "unknown"
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


def write_provenance(
    plan: JobPlan, stage: str | os.PathLike[str], stats: ExecStats, detections: int
) -> Path:
    """Write ``run.json``: inputs and hashes, model, code version, parameters, timings."""
    r = plan.request
    doc: dict[str, Any] = {
        "wastewatch": code_version(),
        "python": platform.python_version(),
        "inputs": {
            "aoi": {"path": r.aoi, "sha256": _sha256(r.aoi), "select": list(r.select)},
            "scenes": [
                {"path": s.path, "sha256": _sha256(s.path), "acquired": s.acquired or None}
                for s in plan.scenes
            ],
            "model": {
                "path": r.model,
                "model_id": plan.card.model_id,
                "arch": plan.card.arch,
                "content_hash": plan.card.content_hash,
            },
        },
        "parameters": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in asdict(r).items()
            if k not in ("aoi", "scenes", "model")
        },
        "grid": plan.grid.to_dict(),
        "tiles": {
            "planned": len(plan.tiles),
            "empty": stats.empty_tiles,
            "core_px": plan.request.tile_size,
            "halo_px": plan.card.halo,
        },
        "detections": detections,
        "execution": stats.to_dict(),
        "timings_s": dict(plan.timings),
    }
    path = Path(stage) / RUN_JSON
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


def run_job(request: JobRequest) -> Path:
    """Plan, infer, extract and publish in this process (no orchestrator). Returns ``out``."""
    plan = plan_job(request)
    with staging(request.out, request.overwrite) as stage:
        stats = infer(plan, stage)
        n = extract_detections(plan, stage)
        write_provenance(plan, stage, stats, n)
    return Path(request.out)
