"""Planning a job: every input checked, the output grid chosen, the tiles cut. Runs once."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from shapely import union_all
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from models import (
    PATCH_CLASSIFIERS,
    ConversionError,
    ModelCard,
    dense_geometry,
    grad_cam_halo,
    load_checkpoint,
)

from ..errors import AOIError, CRSError, InputError, NoOverlapError
from ..geo import (
    CODE_FIELDS,
    MAX_UTM_SPAN_DEG,
    NAME_FIELDS,
    GeoBox,
    SceneInfo,
    aoi_union,
    open_scenes,
    read_vectors,
    select_features,
    utm_crs_for,
)
from .publish import check_output
from .request import JobRequest
from .tiling import Tile, plan_tiles

if TYPE_CHECKING:
    from torch import nn

__all__ = ["JobPlan", "job_card", "plan_job"]

log = logging.getLogger("wastewatch")


@dataclass
class JobPlan:
    """A checked request: the model card, scenes, output grid, AOI and tiles.

    Attributes:
        request: what was asked.
        card: the model card (the weights were loaded and checked once, while planning), its
            dense geometry that of the job: at ``--stride``, with the halo ``--saliency``
            needs (see :func:`job_card`).
        scenes: the scenes, newest first.
        grid: the output grid.
        aoi: the AOI, repaired and clipped to the scenes' coverage, in the grid's CRS.
        units: the AOI's features (``code``, ``name``, geometry) in the grid's CRS: the areas
            sites are attributed to.
        tiles: the tiles to run, row-major.
        timings: seconds per step, filled in as the job goes.
    """

    request: JobRequest
    card: ModelCard
    scenes: list[SceneInfo]
    grid: GeoBox
    aoi: BaseGeometry
    units: gpd.GeoDataFrame
    tiles: list[Tile]
    timings: dict[str, float] = field(default_factory=dict)


def plan_job(request: JobRequest) -> JobPlan:
    """Check every input and plan the tiles. All bad input is reported here, before any work.

    Raises:
        WastewatchError subclasses with a message naming the problem and the fix.
    """
    start = time.perf_counter()
    check_output(request.out, request.overwrite)
    model, card = load_checkpoint(request.model)  # a full load: weights checked against the card
    if card.gsd_m <= 0:
        raise InputError(
            f"the model card of {request.model} gives no GSD: set gsd_m (metres per "
            "pixel the model was trained at) in its card.json"
        )
    card = job_card(card, model, request.stride, request.saliency, request.model)
    aoi_frame = select_features(read_vectors(request.aoi, "AOI"), list(request.select), "AOI")
    scenes = open_scenes(list(request.scenes), len(card.bands))
    aoi_frame = _near_scenes(aoi_frame, scenes, request.aoi)
    crs = _output_crs(request, aoi_frame)
    aoi = aoi_union(_projected(aoi_frame, crs, request.aoi))
    coverage = union_all([s.footprint(crs) for s in scenes])
    area = aoi.intersection(coverage)
    if area.is_empty or area.area <= 0:
        raise NoOverlapError(_no_overlap(request.aoi, scenes))
    grid = GeoBox.from_bounds(area.bounds, card.gsd_m, crs)
    tiles = plan_tiles(grid, request.tile_size, card.halo, card.align or card.output_stride, area)
    if not tiles:
        raise AOIError(
            f"no tile of the {grid.width} x {grid.height} px grid touches the AOI "
            f"{request.aoi}: check the AOI and --select"
        )
    plan = JobPlan(request, card, scenes, grid, area, _units(aoi_frame, crs), tiles)
    plan.timings["plan_s"] = round(time.perf_counter() - start, 3)
    log.info(
        "planned %d tiles of %d px over a %d x %d grid (%s, %.2f m)",
        len(tiles),
        max(int(tiles[0].core.width), int(tiles[0].core.height)),
        grid.width,
        grid.height,
        crs.to_string(),
        grid.resolution,
    )
    return plan


def job_card(
    card: ModelCard,
    model: nn.Module,
    stride: int | None = None,
    saliency: bool = False,
    source: str = "the model",
) -> ModelCard:
    """The card with the dense geometry a job runs at.

    With ``stride`` the patch classifier is densified (``models.to_dense(model, stride)``) and
    its geometry measured again (``models.dense_geometry``): output stride, offset, receptive
    window and halo; tiles keep the network's own alignment, so they are cut as without
    ``stride``. With ``saliency`` the halo also covers every patch over a core pixel
    (``models.grad_cam_halo``), computed at the network's own output stride.

    Args:
        card: the checkpoint's card.
        model: the checkpoint's network.
        stride: the wanted output stride (None: the network's).
        saliency: whether ``saliency.tif`` is written.
        source: the checkpoint, for messages.

    Raises:
        InputError: ``stride`` or ``saliency`` asked of a network that is not a patch
            classifier, or a ``stride`` that does not divide its output stride.
    """
    if stride is None and not saliency:
        return card
    if card.arch not in PATCH_CLASSIFIERS:
        flags = " and ".join(f for f, on in (("--stride", stride), ("--saliency", saliency)) if on)
        raise InputError(
            f"{flags} need a patch classifier ({', '.join(PATCH_CLASSIFIERS)}); {source} is "
            f"a {card.arch} network, dense at every pixel already: leave {flags} out"
        )
    divisors = [d for d in range(1, card.output_stride + 1) if card.output_stride % d == 0]
    if stride is not None and stride not in divisors:
        raise InputError(
            f"--stride {stride} does not divide the output stride {card.output_stride} of "
            f"{source}: choose one of {', '.join(map(str, divisors))}"
        )
    geometry: dict[str, int] = {}
    if stride is not None:
        try:
            geometry = dense_geometry(model, stride)
        except ConversionError as exc:
            raise InputError(f"--stride {stride} cannot be used with {source}: {exc}") from None
    if saliency:  # Grad-CAM runs at the network's own stride: the card's geometry
        need = grad_cam_halo(
            card.patch_size, card.output_stride, card.rf_start, card.receptive_field
        )
        align = card.align or card.output_stride
        geometry["halo"] = max(geometry.get("halo", card.halo), -(-need // align) * align)
    return card.replace(**geometry)


def _no_overlap(path: str, scenes: list[SceneInfo]) -> str:
    names = ", ".join(Path(s.path).name for s in scenes)
    return (
        f"the AOI {path} does not overlap the scenes ({names}): check that "
        "the AOI and scenes cover the same place"
    )


def _near_scenes(frame: gpd.GeoDataFrame, scenes: list[SceneInfo], path: str) -> gpd.GeoDataFrame:
    """The AOI features clipped to (a margin around) the scenes' coverage, in WGS 84.

    An AOI much larger than the imagery (a country, the whole world) cannot be projected into
    one UTM zone, and nothing outside the scenes is computed anyway. AOIs inside the margin are
    returned untouched, so their geometry is exactly what the user gave.
    """
    wgs = frame.to_crs(4326)
    cover = union_all([s.footprint(CRS.from_epsg(4326)) for s in scenes])
    west, south, east, north = cover.bounds
    margin = max(0.01, 0.1 * max(east - west, north - south))
    window = box(west - margin, south - margin, east + margin, north + margin)
    if window.contains(box(*wgs.total_bounds)):
        return frame
    clipped = wgs.copy()
    clipped[clipped.geometry.name] = shapely.intersection(wgs.geometry.values, window)
    clipped = clipped[~clipped.geometry.is_empty]
    if clipped.empty:
        raise NoOverlapError(_no_overlap(path, scenes))
    return clipped


def _output_crs(request: JobRequest, frame: gpd.GeoDataFrame) -> CRS:
    if request.crs:
        try:
            crs = CRS.from_user_input(request.crs)
        except Exception:
            raise CRSError(
                f"--crs {request.crs} is not a CRS: give EPSG:N (e.g. EPSG:32632)"
            ) from None
        if not crs.is_projected:
            raise CRSError(
                f"--crs {request.crs} is not projected: choose a projected CRS in metres "
                "(e.g. a UTM zone such as EPSG:32632)"
            )
        return crs
    west, south, east, north = frame.to_crs(4326).total_bounds
    if east - west > MAX_UTM_SPAN_DEG:
        raise CRSError(
            f"the AOI {request.aoi} spans {east - west:.0f} degrees of longitude where it meets "
            f"the scenes, too wide for one UTM zone (at most {MAX_UTM_SPAN_DEG:.0f}): split "
            "it, or pass --crs with a projected CRS that covers it (e.g. EPSG:3035 for Europe)"
        )
    return utm_crs_for((west + east) / 2, (south + north) / 2)


def _projected(frame: gpd.GeoDataFrame, crs: CRS, path: str) -> gpd.GeoDataFrame:
    projected = frame.to_crs(crs)
    coords = shapely.get_coordinates(projected.geometry.values)
    if not np.isfinite(coords).all():
        raise CRSError(
            f"the AOI {path} does not project into {crs.to_string()} (points come out "
            "infinite): pass --crs with a projected CRS that covers the AOI"
        )
    return projected


def _units(frame: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """The AOI's features as attribution units: ``code`` and ``name`` from the first of
    :data:`CODE_FIELDS` / :data:`NAME_FIELDS` present (None otherwise)."""
    code_field = next((f for f in CODE_FIELDS if f in frame.columns), None)
    name_field = next((f for f in NAME_FIELDS if f in frame.columns), None)

    def column(name: str | None) -> list[str | None]:
        if name is None:
            return [None] * len(frame)
        return [None if v is None or v != v else str(v) for v in frame[name]]

    return gpd.GeoDataFrame(
        {"code": column(code_field), "name": column(name_field)},
        geometry=list(frame.to_crs(crs).geometry),
        crs=crs,
    )
