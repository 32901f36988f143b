"""The steps of an AOI job after planning, as plain functions, and ``run_job`` running them all.

``flows.job`` wires the same functions as Prefect tasks. Nothing here imports Prefect.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio

from ..geo import (
    RasterWriter,
    geojson_precision,
    tile_metadata,
    work_rasters,
    write_cogs,
    write_geojson,
    write_gpkg,
    write_qml,
)
from .detections import detections_frame
from .execute import ExecStats, Workload, execute_local, execute_ray
from .outputs import (
    DETECTIONS_STYLE,
    detections_style,
    picture_lattice,
    report_chips,
    write_job_report,
    write_quicklook,
)
from .plan import JobPlan, plan_job
from .predict import TileResult, saliency_class
from .provenance import input_sha256, write_provenance
from .publish import resume_key, staging
from .request import JobRequest
from .tiledata import PICTURE_TAG
from .vectorize import PIECES_TAG, vectorize

__all__ = [
    "DETECTIONS_GEOJSON",
    "DETECTIONS_GPKG",
    "QUICKLOOK",
    "cogs",
    "extract_detections",
    "finish_outputs",
    "infer",
    "picture",
    "report",
    "run_job",
]

log = logging.getLogger("wastewatch")
DETECTIONS_GEOJSON = "detections.geojson"
DETECTIONS_GPKG = "detections.gpkg"
QUICKLOOK = "quicklook.png"


def infer(plan: JobPlan, stage: str | os.PathLike[str]) -> ExecStats:
    """Run the model over every tile; the finished tiles are presented as the working mosaics
    (``work/*.vrt``) that :func:`cogs` and :func:`extract_detections` read."""
    start = time.perf_counter()
    if plan.request.executor == "ray":
        # the inputs' hashes for run.json while Ray and the model actors start (a core is
        # idle then; after the tiles both are busy with the outputs): kept for
        # `finish_outputs`, which hashes what this did not (and reports what fails)
        threading.Thread(
            target=_hash_inputs, args=(plan, True), name="wastewatch-hash", daemon=True
        ).start()
    r = plan.request
    classes = plan.card.classes
    explained = classes[saliency_class(classes)] if r.saliency else None
    with RasterWriter(stage, plan.grid, classes, r.threshold, explained) as writer:

        def sink(result: TileResult) -> None:
            tile = result.tile
            assert result.pieces is not None, "results are polygonized where they are made"
            tags = {PIECES_TAG: result.pieces}
            if result.picture is not None:
                tags[PICTURE_TAG] = result.picture
            writer.write(
                tile.id, tile.core, result.probabilities, result.mask, result.saliency, tags=tags
            )

        done = writer.done
        todo = [t for t in plan.tiles if t.id not in done]
        if done:
            log.info(
                "resuming: %d of %d tiles were finished by an earlier run",
                len(done),
                len(plan.tiles),
            )

        work = Workload(
            plan.scenes,
            plan.grid,
            plan.aoi,
            r.model,
            len(plan.card.bands),
            r.threshold,
            r.stride,
            r.saliency,
            picture_lattice(plan),
        )
        if not todo:
            stats = ExecStats(executor=r.executor)
        elif r.executor == "local":
            stats = execute_local(todo, work, sink, batch=r.batch, lattice=plan.tiles)
        else:
            stats = execute_ray(
                todo,
                work,
                sink,
                address=r.ray_address,
                actors=r.actors,
                batch=r.batch,
                lattice=plan.tiles,
            )
        stats.resumed_tiles = len(plan.tiles) - len(todo)
        writer.assemble()
    plan.timings["infer_s"] = round(time.perf_counter() - start, 3)
    return stats


def cogs(plan: JobPlan, stage: str | os.PathLike[str]) -> None:
    """Write ``probabilities.tif``, ``mask.tif`` and, with ``--saliency``, ``saliency.tif``
    (COGs with overviews) from the working mosaics. GDAL works with the GIL released: this
    can run in a thread beside :func:`extract_detections` (see :func:`finish_outputs`)."""
    start = time.perf_counter()
    r = plan.request
    write_cogs(stage, plan.card.classes, r.threshold, r.saliency)
    plan.timings["cog_s"] = round(time.perf_counter() - start, 3)


def finish_outputs(plan: JobPlan, stage: str | os.PathLike[str], stats: ExecStats) -> int:
    """:func:`cogs` in a thread while the sites are extracted, pictured and reported here
    (GDAL's work with the GIL released beside mostly Python's: two cores busy); returns the
    number of sites. The report's chips are made in a second thread beside the quicklook, and
    the inputs' hashes for ``run.json`` in a third (hashlib releases the GIL too).

    The quicklook is mostly made of the samples the tiles took (``outputs.picture_lattice``):
    a quicklook read from the scene alone streams the whole AOI through GDAL's block cache,
    and beside the COGs, which stream the mosaics through it, each evicts the other's blocks
    (measured at 400 Mpx: no faster than one after the other).
    """
    with ThreadPoolExecutor(3, thread_name_prefix="wastewatch-outputs") as pool:
        rasters = pool.submit(cogs, plan, stage)
        hashes = pool.submit(_hash_inputs, plan)
        started: list[Future[Any]] = [rasters, hashes]
        try:
            frame, tags = _write_sites(plan, stage)
            chips = pool.submit(report_chips, plan, frame)
            started.append(chips)
            picture(plan, stage, frame, tags)
            report(plan, stage, stats, chips.result())
        finally:
            wait(started)  # never leave the folder with a writer still in it
        rasters.result()
        hashes.result()
    return len(frame)


def _hash_inputs(plan: JobPlan, quiet: bool = False) -> None:
    """Hash the job's input files now (:func:`input_sha256` keeps them for ``run.json``);
    ``quiet``: a file that fails is left for the next call to report."""
    for path in [plan.request.aoi, *(s.path for s in plan.scenes)]:
        try:
            input_sha256(path)
        except OSError:
            if not quiet:
                raise


def _tile_tags(plan: JobPlan, stage: str | os.PathLike[str]) -> dict[str, dict[str, str] | None]:
    """Each tile's tags (its pieces and its quicklook samples), read once for both."""
    return {t.id: tile_metadata(stage, t.id) for t in plan.tiles}


def _detections(stage: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(Path(stage) / DETECTIONS_GPKG, layer="detections")


def picture(
    plan: JobPlan,
    stage: str | os.PathLike[str],
    frame: gpd.GeoDataFrame | None = None,
    tags: Mapping[str, dict[str, str] | None] | None = None,
) -> Path:
    """Write ``quicklook.png`` of the sites (``frame``, default the staged detections), with
    the samples the tiles took (their ``tags``, read here if None)."""
    start = time.perf_counter()
    sites = _detections(stage) if frame is None else frame
    tags = _tile_tags(plan, stage) if tags is None else tags
    path = write_quicklook(plan, sites, Path(stage) / QUICKLOOK, tags)
    plan.timings["quicklook_s"] = round(time.perf_counter() - start, 3)
    return path


def extract_detections(plan: JobPlan, stage: str | os.PathLike[str]) -> int:
    """Vectorize the mask into ranked sites; write GeoJSON, GeoPackage (with its default QGIS
    style), the style's sidecar ``detections.qml`` and the quicklook (:func:`picture`).

    Returns:
        The number of sites.
    """
    frame, tags = _write_sites(plan, stage)
    picture(plan, stage, frame, tags)
    return len(frame)


def _write_sites(
    plan: JobPlan, stage: str | os.PathLike[str]
) -> tuple[gpd.GeoDataFrame, dict[str, dict[str, str] | None]]:
    """:func:`extract_detections` but the quicklook: the sites and the tiles' tags (read once,
    for the pieces here and the quicklook's samples)."""
    start = time.perf_counter()
    folder = Path(stage)
    probabilities, _ = work_rasters(folder)
    tags = _tile_tags(plan, folder)
    sites = vectorize(
        folder,
        probabilities,
        plan.tiles,
        plan.grid,
        plan.card.classes,
        plan.aoi,
        min_area_m2=plan.request.min_area_m2,
        tags=tags,
    )
    frame = detections_frame(
        sites,
        plan.grid.crs,
        plan.card.classes,
        plan.units,
        plan.card.model_id,
        plan.request.survey_date,
        (plan.request.confidence_high, plan.request.confidence_medium),
    )
    precision = geojson_precision(plan.grid.resolution)
    style = detections_style(plan)
    write_geojson(frame, folder / DETECTIONS_GEOJSON, id_field="site_id", precision=precision)
    write_gpkg(frame, folder / DETECTIONS_GPKG, dates=("survey_date",), style=style)
    write_qml(folder / DETECTIONS_STYLE, style)  # QGIS loads it with detections.geojson
    plan.timings["vectorize_s"] = round(time.perf_counter() - start, 3)
    return frame, tags


def report(
    plan: JobPlan,
    stage: str | os.PathLike[str],
    stats: ExecStats | None = None,
    chips: list[bytes | None] | None = None,
) -> Path:
    """Write ``report.html`` from the staged detections and quicklook, and the execution's
    figures (``stats``, else those of ``run.json``); ``chips``: the sites' chips when they
    were made already (``outputs.report_chips``)."""
    folder = Path(stage)
    execution = stats.to_dict() if stats is not None else None
    return write_job_report(plan, folder, _detections(folder), folder / QUICKLOOK, execution, chips)


def run_job(request: JobRequest, plan: JobPlan | None = None) -> Path:
    """Plan (unless given the plan), infer, write the COGs beside extracting and reporting the
    sites, record and publish, in this process. Returns ``out``."""
    plan = plan or plan_job(request)
    with staging(request.out, request.overwrite, resume_key(plan), request.resume) as stage:
        stats = infer(plan, stage)
        n = finish_outputs(plan, stage, stats)
        write_provenance(plan, stage, stats, n)
    return Path(request.out)
