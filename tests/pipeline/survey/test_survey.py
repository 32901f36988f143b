"""Surveys through the real command line: two dates of a small region, statuses against a
revisit's truth, ids carried, the registry, resume after a SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from tests.helpers import assert_bad_input, wastewatch

D1, D2 = "2026-06-15", "2027-06-15"
REGION_FILES = (
    "detections.geojson",
    "detections.gpkg",
    "changes.geojson",
    "report.html",
)


@pytest.fixture(scope="module")
def region(tmp_path_factory, survey_scene):
    """Three strip-shaped municipalities over the survey scene; imagery of two dates."""
    from pipeline.synthetic import synth_revisit

    base = tmp_path_factory.mktemp("region")
    with rasterio.open(survey_scene.scene) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    step = (right - left) / 3
    strips = [box(left + i * step, bottom, left + (i + 1) * step, top) for i in range(3)]
    municipalities = base / "municipalities.geojson"
    gpd.GeoDataFrame(
        {"com_istat_code": ["900001", "900002", "900003"], "name": ["Alfa", "Beta", "Gamma"]},
        geometry=strips,
        crs=crs,
    ).to_crs(4326).to_file(municipalities)
    revisit = synth_revisit(survey_scene.scene.parent, base / "revisit", seed=3)
    imagery = base / "imagery"
    imagery.mkdir()
    shutil.copy(survey_scene.scene, imagery / "2026.tif")
    shutil.copy(revisit.scene, imagery / "2027.tif")
    return {
        "municipalities": municipalities,
        "imagery": imagery,
        "truth1": survey_scene.truth,
        "truth2": revisit.truth,
    }


def _survey_args(region, model_dir, root, date, *extra, executor="local"):
    return [
        "survey",
        "--municipalities",
        str(region["municipalities"]),
        "--scenes",
        str(region["imagery"]),
        "--model",
        str(model_dir),
        "--date",
        date,
        "--out",
        str(root),
        "--max-age",
        "300",
        "--tile-size",
        "256",
        "--no-prefect",
        "--executor",
        executor,
        *extra,
    ]


def _survey(region, model_dir, root, date, *extra, executor="local"):
    return wastewatch(*_survey_args(region, model_dir, root, date, *extra, executor=executor))


@pytest.fixture(scope="module")
def two_surveys(region, model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("surveys") / "region"
    first = _survey(region, model_dir, root, D1)
    assert first.returncode == 0, first.stderr
    second = _survey(region, model_dir, root, D2)
    assert second.returncode == 0, second.stderr
    return root


def _features(path):
    return json.loads(Path(path).read_text())["features"]


def test_first_survey_finds_new_sites(two_surveys, region):
    folder = two_surveys / D1
    for name in (*REGION_FILES, "survey.json"):
        assert (folder / name).is_file(), name
    assert sorted(p.name for p in (folder / "jobs").iterdir()) == ["900001", "900002", "900003"]
    sites = _features(folder / "detections.geojson")
    assert sites and {f["properties"]["status"] for f in sites} == {"new"}
    assert [f["properties"]["rank"] for f in sites] == list(range(1, len(sites) + 1))
    proc = wastewatch("eval", "--survey", str(folder), "--truth", str(region["truth1"]))
    scores = json.loads(proc.stdout)
    assert scores["recall"] >= 0.8 and scores["status_agreement"] == 1.0, scores


def test_second_survey_statuses_match_the_revisit(two_surveys, region):
    folder = two_surveys / D2
    info = json.loads((folder / "survey.json").read_text())
    assert info["previous"] == D1
    proc = wastewatch("eval", "--survey", str(folder), "--truth", str(region["truth2"]))
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    truth_statuses = {f["properties"]["status"] for f in _features(region["truth2"])}
    assert {"new", "persisting", "disappeared"} <= truth_statuses
    assert scores["status_compared"] >= 8
    assert scores["status_agreement"] >= 0.8, scores
    # new and grown sites head the inspection list
    statuses = [f["properties"]["status"] for f in _features(folder / "detections.geojson")]
    firsts = [s in ("new", "grown") for s in statuses]
    assert firsts == sorted(firsts, reverse=True)


def test_matched_sites_keep_their_ids(two_surveys):
    from shapely.geometry import shape

    before = {
        f["properties"]["site_id"]: shape(f["geometry"])
        for f in _features(two_surveys / D1 / "detections.geojson")
    }
    after = _features(two_surveys / D2 / "detections.geojson")
    carried = [f for f in after if f["properties"]["status"] != "new"]
    assert carried
    for f in carried:
        sid = f["properties"]["site_id"]
        assert sid in before and before[sid].intersects(shape(f["geometry"]))
        assert f["properties"]["first_seen"] == D1


def test_registry_follows_each_site(two_surveys):
    sites = gpd.read_file(two_surveys / "registry.gpkg", layer="sites")
    history = gpd.read_file(two_surveys / "registry.gpkg", layer="history")
    ids1 = {f["properties"]["site_id"] for f in _features(two_surveys / D1 / "detections.geojson")}
    ids2 = {f["properties"]["site_id"] for f in _features(two_surveys / D2 / "detections.geojson")}
    assert ids1 | ids2 <= set(sites["site_id"])
    assert {str(d)[:10] for d in history["survey_date"]} == {D1, D2}
    one = next(iter(ids1 & ids2))
    rows = history[history["site_id"] == one]
    assert len(rows) == 2 and str(sites.set_index("site_id").loc[one, "first_seen"])[:10] == D1


def test_not_observed_where_the_new_imagery_has_no_data(two_surveys, region, model_dir, tmp_path):
    root = tmp_path / "region"
    shutil.copytree(two_surveys / D1, root / D1)
    first = _features(root / D1 / "detections.geojson")
    target = first[0]
    # the second date's imagery, with a hole over the first survey's best site
    imagery = tmp_path / "imagery"
    imagery.mkdir()
    shutil.copy(region["imagery"] / "2026.tif", imagery / "2026.tif")
    with rasterio.open(region["imagery"] / "2027.tif") as src:
        data, profile, tags = src.read(), src.profile, src.tags()
        geom = gpd.GeoDataFrame.from_features([target], crs=4326).to_crs(src.crs).geometry[0]
        x0, y0, x1, y1 = geom.buffer(20).bounds
        r0, c0 = src.index(x0, y1)
        r1, c1 = src.index(x1, y0)
    data[:, max(r0, 0) : r1 + 1, max(c0, 0) : c1 + 1] = 0  # nodata
    with rasterio.open(imagery / "2027.tif", "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(**tags)
    masked = dict(region, imagery=imagery)
    proc = _survey(masked, model_dir, root, D2)
    assert proc.returncode == 0, proc.stderr
    changes = {
        f["properties"]["site_id"]: f["properties"]["status"]
        for f in _features(root / D2 / "changes.geojson")
    }
    assert changes.get(target["properties"]["site_id"]) == "not_observed", changes


def test_resume_after_sigkill_redoes_no_finished_job(region, model_dir, tmp_path, two_surveys):
    root = tmp_path / "killed" / "region"
    argv = [
        sys.executable,
        "-m",
        "pipeline.cli",
        *_survey_args(region, model_dir, root, D1, "--concurrency", "1"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_job = root / D1 / "jobs" / "900001" / "run.json"
    deadline = time.monotonic() + 240
    while not first_job.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first_job.exists() and not (root / D1 / "survey.json").exists()
    done = {
        p.name: p.joinpath("run.json").stat().st_mtime_ns
        for p in (root / D1 / "jobs").iterdir()
        if p.joinpath("run.json").exists()
    }
    resumed = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    for code, mtime in done.items():
        assert (root / D1 / "jobs" / code / "run.json").stat().st_mtime_ns == mtime, code
    assert not list((root / D1 / "jobs").glob(".*partial*"))
    uninterrupted = two_surveys / D1
    for name in REGION_FILES:
        assert (root / D1 / name).read_bytes() == (uninterrupted / name).read_bytes(), name


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--select", "999999"), ("municipalities", "999999", "check the codes")),
        (("--date", "2020-01-01"), ("no scene", "2020-01-01", "--max-age")),
        (("--previous", "2026-01-01"), ("--previous 2026-01-01 is not a survey",)),
        (("--date", "yesterday"), ("--date", "YYYY-MM-DD")),
    ],
)
def test_bad_survey_input(region, model_dir, tmp_path, args, words):
    extra = list(args)
    date = D1
    if "--date" in extra:
        date = extra[extra.index("--date") + 1]
        del extra[extra.index("--date") : extra.index("--date") + 2]
    proc = _survey(region, model_dir, tmp_path / "root", date, *extra)
    assert_bad_input(proc, *words)
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())


def test_a_date_before_the_previous_survey(two_surveys, region, model_dir):
    proc = _survey(region, model_dir, two_surveys, "2026-12-01")
    assert_bad_input(proc, "later survey", D2)


def test_survey_json_records_provenance(two_surveys):
    info = json.loads((two_surveys / D2 / "survey.json").read_text())
    assert info["schema_version"] == 1 and info["date"] == D2
    assert [s["acquired"] for s in info["inputs"]["scenes"]] == [D2]
    assert set(info["municipalities"]) == {"900001", "900002", "900003"}
    assert all(m["run_json_sha256"] for m in info["municipalities"].values())
    assert sum(info["counts_by_status"].values()) >= info["sites"]
    assert np.isfinite(info["timings_s"]["region_s"])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="needs Debian's chromium (make test installs it)")
def test_report_renders_in_headless_chromium(two_surveys, tmp_path):
    """What an inspector sees: the report opens offline and shows the list with its pictures."""
    report = two_surveys / D2 / "report.html"
    page = report.read_text()
    assert "http://" not in page and "https://" not in page  # self-contained
    sites = _features(two_surveys / D2 / "detections.geojson")
    assert page.count('class="chip"') == len(sites)
    first = sites[0]["properties"]
    assert first["site_id"] in page.split("Inspection list")[1].split("</tr>")[1]
    png = tmp_path / "report.png"
    proc = subprocess.run(
        [
            str(_chromium()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,1400",
            f"--screenshot={png}",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.exists(), proc.stderr[-2000:]
    with rasterio.open(png) as src:
        pixels = src.read()
    # not a blank page: text, badges and chips cover a good part of it, in colour
    assert (pixels.min(axis=0) < 200).mean() > 0.05
    assert (pixels.max(axis=0).astype(int) - pixels.min(axis=0) > 60).mean() > 0.01


def test_municipality_jobs_on_ray_share_the_cpus_out(
    ray_local, region, model_dir, tmp_path, monkeypatch
):
    """Jobs a survey runs side by side on one Ray each get their share of its CPUs (here 2
    CPUs, 2 at a time: one actor each), unless the request names its actors."""
    from types import SimpleNamespace

    import pipeline.survey.run as survey_run
    from pipeline.job.request import JobRequest

    ran: list[JobRequest] = []
    monkeypatch.setattr(survey_run, "run_job", ran.append)
    plan = SimpleNamespace(request=SimpleNamespace(concurrency=2), model_hash="x")
    base = {"aoi": str(region["municipalities"]), "scenes": (str(region["imagery"] / "2026.tif"),),
            "model": str(model_dir), "executor": "ray"}  # fmt: skip
    for i, actors in enumerate((None, 2)):
        job = JobRequest(**base, out=str(tmp_path / f"j{i}"), actors=actors)
        survey_run.run_municipality(plan, job)  # type: ignore[arg-type]
    assert [j.actors for j in ran] == [1, 2] and all(j.overwrite for j in ran)
