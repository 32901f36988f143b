from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import shape
from shapely.geometry.polygon import LinearRing

from pipeline.evaluation import evaluate_detections
from pipeline.job import JobRequest, run_job
from pipeline.synthetic import synth_scene

FIELDS = {
    "site_id",
    "class",
    "score_max",
    "score_mean",
    "confidence",
    "area_m2",
    "rank",
    "municipality_code",
    "municipality",
    "survey_date",
    "model_id",
}


def _request(scene, model_dir, out, **kw) -> JobRequest:
    return JobRequest(
        aoi=str(scene.aoi),
        scenes=(str(scene.scene),),
        model=str(model_dir),
        out=str(out),
        tile_size=kw.pop("tile_size", 256),
        **kw,
    )


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, survey_scene, model_dir):
    out = tmp_path_factory.mktemp("job") / "out"
    run_job(_request(survey_scene, model_dir, out, executor="local", survey_date="2026-06-15"))
    return out


def test_outputs_are_valid_cogs_in_the_grid_crs(local_run):
    for name in ("probabilities.tif", "mask.tif"):
        valid, errors, _ = cog_validate(local_run / name)
        assert valid, errors
        with rasterio.open(local_run / name) as src:
            assert src.crs.to_epsg() == 32632 and src.nodata == 255 and src.dtypes[0] == "uint8"
            assert src.overviews(1)
    assert not list(local_run.parent.glob(".*partial*"))
    assert not (local_run / "work").exists()


def test_detections_find_the_planted_sites(local_run, survey_scene):
    doc = json.loads((local_run / "detections.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    aoi = shape(json.loads(survey_scene.aoi.read_text())["features"][0]["geometry"])
    ranks = []
    for f in doc["features"]:
        assert set(f["properties"]) == FIELDS
        geom = shape(f["geometry"])
        assert aoi.buffer(1e-7).contains(geom)  # lon/lat, inside the AOI
        assert -180 <= geom.bounds[0] <= 180 and -90 <= geom.bounds[1] <= 90
        polys = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
        for p in polys:
            assert LinearRing(p.exterior.coords).is_ccw  # RFC 7946 right-hand rule
        props = f["properties"]
        assert 0 < props["score_mean"] <= props["score_max"] <= 1
        assert props["area_m2"] >= 50 and props["survey_date"] == "2026-06-15"
        ranks.append(props["rank"])
    assert ranks == list(range(1, len(ranks) + 1))
    scores = [f["properties"]["score_max"] for f in doc["features"]]
    assert scores == sorted(scores, reverse=True)
    metrics = evaluate_detections(local_run / "detections.geojson", survey_scene.truth)
    assert metrics["recall"] >= 0.8 and metrics["precision"] >= 0.7, metrics


def test_run_json_records_provenance(local_run, model_dir):
    run = json.loads((local_run / "run.json").read_text())
    card = json.loads((model_dir / "card.json").read_text())
    assert run["inputs"]["model"]["content_hash"] == card["content_hash"]
    assert len(run["inputs"]["scenes"][0]["sha256"]) == 64
    assert run["tiles"]["planned"] == run["execution"]["tiles"] >= 4
    assert run["parameters"]["tile_size"] == 256
    assert {"plan_s", "infer_s", "cog_s", "vectorize_s"} <= set(run["timings_s"])


def test_same_inputs_same_bytes_and_ray_equals_local(
    tmp_path, local_run, survey_scene, model_dir, ray_local
):
    out = tmp_path / "ray"
    run_job(_request(survey_scene, model_dir, out, executor="ray", survey_date="2026-06-15"))
    assert (out / "detections.geojson").read_bytes() == (
        local_run / "detections.geojson"
    ).read_bytes()
    for name in ("mask.tif", "probabilities.tif"):
        with rasterio.open(out / name) as a, rasterio.open(local_run / name) as b:
            assert np.array_equal(a.read(), b.read())


def test_other_tile_size_gives_the_same_mask(tmp_path, local_run, survey_scene, model_dir):
    out = tmp_path / "t"
    run_job(
        _request(
            survey_scene, model_dir, out, executor="local", tile_size=160, survey_date="2026-06-15"
        )
    )
    with rasterio.open(out / "mask.tif") as a, rasterio.open(local_run / "mask.tif") as b:
        assert np.array_equal(a.read(), b.read())


def test_sites_land_on_the_truth_in_another_crs_and_gsd(tmp_path, model_dir):
    # scene in ETRS89-LAEA at 0.6 m; the job warps it onto a UTM grid at the model's 0.5 m
    scene = synth_scene(tmp_path / "laea", size=500, gsd=0.6, crs="EPSG:3035", seed=21, landfills=8)
    out = tmp_path / "out"
    run_job(_request(scene, model_dir, out, executor="local"))
    with rasterio.open(out / "mask.tif") as src:
        assert src.crs.to_epsg() == 32632 and src.res == (0.5, 0.5)
    metrics = evaluate_detections(out / "detections.geojson", scene.truth)
    assert metrics["recall"] >= 0.8 and metrics["mean_iou"] >= 0.5, metrics


def test_failed_job_publishes_nothing_and_keeps_its_tiles_for_resume(
    tmp_path, survey_scene, model_dir, monkeypatch, local_run
):
    import pipeline.job.run as job

    vectorize = job.vectorize  # what run_job calls after inference

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(job, "vectorize", boom)
    request = _request(
        survey_scene, model_dir, tmp_path / "out", executor="local", survey_date="2026-06-15"
    )
    with pytest.raises(RuntimeError):
        run_job(request)
    # no output; only the hidden staging folder with the finished tiles and their ledger
    (stage,) = list(tmp_path.iterdir())
    assert stage.name.startswith(".out.partial-")
    ledger = (stage / "work" / "ledger.txt").read_text().splitlines()
    tiles = json.loads((local_run / "run.json").read_text())["tiles"]["planned"]
    assert len(ledger) == tiles
    monkeypatch.setattr(job, "vectorize", vectorize)
    run_job(request.model_copy(update={"resume": True}))
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["execution"]["resumed_tiles"] == tiles and run["execution"]["tiles"] == 0
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]
    for name in ("mask.tif", "probabilities.tif", "detections.geojson"):
        assert (tmp_path / "out" / name).read_bytes() == (local_run / name).read_bytes(), name


def test_published_folder_is_not_private(local_run):
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(local_run.stat().st_mode) == 0o777 & ~umask


def _descendants(pid: int) -> list[int]:
    import os

    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(c) for c in f.read().split()]
                out.extend(kids)
                todo.extend(kids)
        except OSError:
            continue
    return out


def _kill_a_model_actor() -> int:
    """SIGKILL one model actor process of this test's Ray (a descendant of this process that
    Ray titles ``ray::_PredictorActor``); the number killed."""
    import os
    import signal

    killed = 0
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"_PredictorActor" in cmd:
            os.kill(pid, signal.SIGKILL)
            killed += 1
            break
    return killed


def test_a_model_actor_killed_mid_job_changes_no_output(
    tmp_path, local_run, survey_scene, model_dir, ray_local, monkeypatch
):
    """Ray restarts the actor and retries its calls; the outputs are those of an undisturbed
    run, byte for byte (the writes are idempotent: a core written twice is the same core)."""
    from pipeline.geo import RasterWriter

    write = RasterWriter.write
    killed: list[int] = []

    def write_then_kill(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        write(self, *args, **kwargs)
        if not killed:
            killed.append(_kill_a_model_actor())

    monkeypatch.setattr(RasterWriter, "write", write_then_kill)
    out = tmp_path / "ray"
    run_job(_request(survey_scene, model_dir, out, executor="ray", survey_date="2026-06-15"))
    assert killed == [1]
    run = json.loads((out / "run.json").read_text())
    assert (
        run["execution"]["tiles"]
        == json.loads((local_run / "run.json").read_text())["execution"]["tiles"]
    )
    assert (out / "detections.geojson").read_bytes() == (
        local_run / "detections.geojson"
    ).read_bytes()
    for name in ("mask.tif", "probabilities.tif"):
        with rasterio.open(out / name) as a, rasterio.open(local_run / name) as b:
            assert np.array_equal(a.read(), b.read())


def test_jobs_side_by_side_share_the_cpus_out(ray_local):
    """A survey's jobs running at once get the CPUs between them (one actor each at least);
    a job alone gets one single-threaded actor per CPU."""
    from pipeline.cluster import cpu_actors_per_job
    from pipeline.job.placement import placement as _placement

    assert [cpu_actors_per_job(n) for n in (1, 2, 5)] == [2, 1, 1]
    assert _placement(0, 2.0, None)[0] == 2
    assert _placement(0, 2.0, 1)[0] == 1
    assert _placement(1, 8.0, None)[0] == 1 and _placement(1, 8.0, None)[3] == "cuda"


def test_the_quicklook_takes_the_tiles_samples_and_reads_only_the_rest(
    tmp_path, survey_scene, model_dir, monkeypatch
):
    """The tiles take the quicklook's samples while their pixels are in memory (stored with
    each tile); the picture then reads only what no tile covers (its margin around the AOI),
    and is the picture read from the scene alone, pixel for pixel."""
    import pyogrio

    import pipeline.job.outputs as outputs
    import pipeline.report.sampling as sampling_module
    from pipeline.job.plan import plan_job
    from pipeline.job.tiledata import PICTURE_TAG

    monkeypatch.setattr(outputs, "QUICKLOOK_SIZE", 60)  # a 352 px window sampled, not averaged
    read_px: list[int] = []  # scene pixels the quicklook's sampling reads
    sampling: list[bool] = []
    real_read, real_sample = rasterio.io.DatasetReader.read, sampling_module._sample

    def counting_read(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        window = kwargs.get("window")
        if sampling and window is not None:
            read_px.append(int(window.width * window.height))
        return real_read(self, *args, **kwargs)

    def counting_sample(*args, **kwargs):  # type: ignore[no-untyped-def]
        sampling.append(True)
        try:
            return real_sample(*args, **kwargs)
        finally:
            sampling.clear()

    import geopandas as gpd
    from shapely.geometry import box

    with rasterio.open(survey_scene.scene) as src:  # an AOI inside the scene: a margin to read
        left, bottom, right, top = src.bounds
        dx, dy = (right - left) / 4, (top - bottom) / 4
        inner = box(left + dx, bottom + dy, right - dx, top - dy)
        gpd.GeoDataFrame(geometry=[inner], crs=src.crs.to_wkt()).to_file(tmp_path / "aoi.gpkg")
    request = _request(survey_scene, model_dir, tmp_path / "out", executor="local", tile_size=128)
    request = request.model_copy(update={"aoi": str(tmp_path / "aoi.gpkg")})
    plan = plan_job(request)
    picture = outputs.picture_lattice(plan)
    assert picture is not None
    kept: dict[str, str] = {}
    import pipeline.job.run as run_module

    real_put = run_module.tile_metadata  # the tiles' tags, read once for pieces and picture

    def kept_tags(folder, tile_id):  # type: ignore[no-untyped-def]
        tags = real_put(folder, tile_id)
        if tags and PICTURE_TAG in tags:
            kept[tile_id] = tags[PICTURE_TAG]
        return tags

    monkeypatch.setattr(run_module, "tile_metadata", kept_tags)
    monkeypatch.setattr(rasterio.io.DatasetReader, "read", counting_read)
    monkeypatch.setattr(sampling_module, "_sample", counting_sample)
    run_job(request, plan)
    with_tiles = sum(read_px)
    assert len(kept) >= len(plan.tiles) // 2  # the tiles' files carried their samples
    assert all(picture.known(v) is not None for v in kept.values())
    frame = pyogrio.read_dataframe(tmp_path / "out" / "detections.gpkg", layer="detections")
    read_px.clear()
    alone = tmp_path / "alone.png"
    outputs.write_quicklook(plan, frame, alone)  # no tiles: every sample from the scene
    assert alone.read_bytes() == (tmp_path / "out" / "quicklook.png").read_bytes()
    # the margin only: a tenth of the window's pixels (and a little more: whole block rows)
    assert 0 < with_tiles < 0.5 * sum(read_px)


def test_a_file_asked_for_by_threads_at_once_is_hashed_once(tmp_path, monkeypatch):
    """The job's early hashing thread and its outputs may ask for the same scene's hash at
    once: it is computed once, and both get it."""
    import threading
    import time

    import pipeline.job.provenance as provenance

    calls = []

    def slow(path):  # type: ignore[no-untyped-def]
        calls.append(path)
        time.sleep(0.2)
        return "h"

    monkeypatch.setattr(provenance, "file_sha256", slow)
    provenance._sha256.cache_clear()
    f = tmp_path / "scene.tif"
    f.write_bytes(b"x")
    got: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: got.append(provenance.input_sha256(str(f))))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["h", "h", "h"] and len(calls) == 1
    provenance._sha256.cache_clear()
