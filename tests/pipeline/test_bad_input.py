"""The bad-input contract, class by class, through the real command line (subprocesses).

Each class: exit code 2 and one line naming the problem and the fix, no traceback, nothing left
behind, inputs untouched; or, where the input is usable after all (a bow-tie AOI, a huge tile
size, a world AOI), a job that runs and places its outputs right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely import make_valid
from shapely.geometry import shape

from tests.helpers import assert_bad_input, wastewatch


def _argv(scene: Path, aoi: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--aoi",
        str(aoi),
        "--scenes",
        str(scene),
        "--model",
        str(model),
        "--out",
        str(out),
        "--tile-size",
        "256",
        *extra,
    ]


def _local(*extra: str) -> tuple[str, ...]:
    return ("--no-prefect", "--executor", "local", *extra)


def _aoi_file(path: Path, coordinates: list) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "test AOI"},
                        "geometry": {"type": "Polygon", "coordinates": coordinates},
                    }
                ],
            }
        )
    )
    return path


def _scene_bounds_wgs(scene: Path) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    with rasterio.open(scene) as src:
        return transform_bounds(src.crs, "EPSG:4326", *src.bounds)


@pytest.mark.slow
def test_prefect_path_from_a_folder_holding_models_pipeline_and_flows(
    tmp_path, survey_scene, model_dir
):
    """A user's own models/, pipeline/ and flows/ folders in the working directory shadow
    nothing (driver and Ray workers); -q prints no INFO line and no Ray banner; more CPU actors
    than CPUs are capped with a warning."""
    work = tmp_path / "work"
    for name in ("models", "pipeline", "flows"):
        (work / name).mkdir(parents=True)
        (work / name / "__init__.py").write_text(
            f"raise ImportError('the user folder {name}/ was imported instead of wastewatch')\n"
        )
    (work / "models" / "my-checkpoint.pt").write_bytes(b"\0" * 16)
    script = Path(sys.executable).parent / "wastewatch"
    env = {**os.environ, "WASTEWATCH_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        [
            str(script),
            "-q",
            *_argv(survey_scene.scene, survey_scene.aoi, model_dir, Path("out")),
            "--actors",
            "8",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "--actors 8" in lines[0], proc.stderr
    run = json.loads((work / "out" / "run.json").read_text())
    assert run["execution"]["executor"] == "ray" and run["execution"]["workers"] == 2
    assert "detections.geojson" in proc.stdout


def _corrupt_a_block(src_path: Path, dst_path: Path) -> None:
    """A truncated copy of a scene: a COG whose header and first tiles are intact (it opens and
    plans) and whose last tiles are cut off, so reading fails only mid-run."""
    import rasterio.shutil

    rasterio.shutil.copy(src_path, dst_path, driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE")
    size = dst_path.stat().st_size
    with open(dst_path, "r+b") as f:
        f.truncate(int(size * 0.6))


@pytest.mark.slow
def test_corrupt_scene_found_mid_run_on_the_prefect_path_is_one_line(
    tmp_path, survey_scene, model_dir
):
    bad = tmp_path / "corrupt.tif"
    _corrupt_a_block(survey_scene.scene, bad)
    env = {**os.environ, "WASTEWATCH_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            *_argv(bad, survey_scene.aoi, model_dir, tmp_path / "out", "--executor", "local"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # progress lines (INFO) may precede it: the job had started; the error is one line
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "See previous exception" not in proc.stderr
    lines = [x for x in proc.stderr.strip().splitlines() if " INFO " not in x]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("wastewatch: error: scene") and "corrupt.tif" in lines[0]
    assert "truncated or corrupt" in lines[0] and "TIFF" in lines[0]
    # the CLI planned before starting Prefect; the flow used that plan, it did not plan again
    assert proc.stderr.count(" planned ") == 1, proc.stderr
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


@pytest.mark.slow
def test_bad_input_mid_run_is_not_retried(tmp_path, survey_scene, model_dir, prefect_harness):
    """A WastewatchError raised while inferring fails the task at once: no second pass."""
    import asyncio

    from prefect import get_client

    from flows.job import aoi_job
    from pipeline.errors import SceneReadError
    from pipeline.job import JobRequest

    bad = tmp_path / "corrupt.tif"
    _corrupt_a_block(survey_scene.scene, bad)
    request = JobRequest(
        aoi=str(survey_scene.aoi),
        scenes=(str(bad),),
        model=str(model_dir),
        out=str(tmp_path / "out"),
        tile_size=256,
        executor="local",
    )
    state = aoi_job(request, return_state=True)
    assert state.is_failed()
    with pytest.raises(SceneReadError):
        state.result()

    async def inference_runs():
        async with get_client() as client:
            runs = await client.read_task_runs()
        return [r for r in runs if r.name.startswith("run_inference") and r.flow_run_id == state_id]

    state_id = state.state_details.flow_run_id
    runs = asyncio.run(inference_runs())
    assert len(runs) == 1 and runs[0].run_count == 1, [(r.name, r.run_count) for r in runs]


def test_scene_with_more_bands_than_the_model(tmp_path, survey_scene, model_dir):
    four = tmp_path / "rgbn.tif"
    with rasterio.open(survey_scene.scene) as src:
        data = src.read()
        profile = src.profile | {"count": 4}
        with rasterio.open(four, "w", **profile) as dst:
            dst.write(np.concatenate([data, data[:1]]))
    proc = wastewatch(*_argv(four, survey_scene.aoi, model_dir, tmp_path / "out"), *_local())
    assert_bad_input(proc, "rgbn.tif", "4 bands", "reads 3", "gdal_translate")


def test_scene_with_an_alpha_band_is_refused_with_the_fix(tmp_path, survey_scene, model_dir):
    from rasterio.enums import ColorInterp

    rgba = tmp_path / "rgba.tif"
    with rasterio.open(survey_scene.scene) as src:
        data = src.read()
        profile = src.profile | {"count": 4, "nodata": None}
        with rasterio.open(rgba, "w", **profile) as dst:
            dst.write(np.concatenate([data, np.full_like(data[:1], 255)]))
            dst.colorinterp = [
                ColorInterp.red,
                ColorInterp.green,
                ColorInterp.blue,
                ColorInterp.alpha,
            ]
    proc = wastewatch(*_argv(rgba, survey_scene.aoi, model_dir, tmp_path / "out"), *_local())
    assert_bad_input(proc, "rgba.tif", "4 bands", "alpha", "-mask 4")
    assert not (tmp_path / "out").exists()


def test_nan_pixels_of_a_float_scene_become_nodata(tmp_path, survey_scene, model_dir):
    scene = tmp_path / "float.tif"
    with rasterio.open(survey_scene.scene) as src:
        data = src.read().astype("float32")
        valid = src.dataset_mask() > 0
        profile = src.profile | {"dtype": "float32", "nodata": None}
        transform = src.transform
    data[:, ~valid] = np.nan
    data[:, 200:300, 200:300] = np.nan  # a hole inside the AOI
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(data)
    out = tmp_path / "out"
    proc = wastewatch(*_argv(scene, survey_scene.aoi, model_dir, out), *_local())
    assert proc.returncode == 0, proc.stderr
    with rasterio.open(out / "mask.tif") as mask, rasterio.open(out / "probabilities.tif") as prob:
        # the hole's centre, in the output grid
        x, y = transform * (250, 250)
        row, col = mask.index(x, y)
        win = ((row - 30, row + 30), (col - 30, col + 30))
        assert (mask.read(1, window=win) == 255).all()
        assert (prob.read(1, window=win) == 255).all()
        # and around the hole the model did run
        x, y = transform * (250, 420)
        row, col = mask.index(x, y)
        assert mask.read(1, window=((row - 5, row + 5), (col - 5, col + 5))).max() < 255


def test_self_intersecting_aoi_is_repaired(tmp_path, survey_scene, model_dir):
    w, s, e, n = _scene_bounds_wgs(survey_scene.scene)
    # a bow-tie: the ring crosses itself in the middle of the scene
    bowtie = [[[w, s], [e, n], [e, s], [w, n], [w, s]]]
    aoi = _aoi_file(tmp_path / "bowtie.geojson", bowtie)
    out = tmp_path / "out"
    proc = wastewatch(*_argv(survey_scene.scene, aoi, model_dir, out), *_local())
    assert proc.returncode == 0, proc.stderr
    repaired = make_valid(shape({"type": "Polygon", "coordinates": bowtie}))
    assert repaired.geom_type == "MultiPolygon"  # two triangles
    doc = json.loads((out / "detections.geojson").read_text())
    assert doc["features"]
    for f in doc["features"]:
        assert repaired.buffer(1e-6).contains(shape(f["geometry"]))


def test_tile_size_larger_than_the_grid_is_clipped(tmp_path, survey_scene, model_dir):
    out = tmp_path / "out"
    argv = _argv(survey_scene.scene, survey_scene.aoi, model_dir, out)
    argv[argv.index("--tile-size") + 1] = "10000000"
    proc = wastewatch(*argv, *_local())
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["tiles"]["planned"] == 1
    assert run["tiles"]["core_px"] <= max(run["grid"]["width"], run["grid"]["height"]) + 64
    with rasterio.open(out / "mask.tif") as src:
        assert (src.read(1) != 255).mean() > 0.5
    assert json.loads((out / "detections.geojson").read_text())["features"]


def test_an_aoi_the_size_of_the_world_runs_over_the_scene(tmp_path, survey_scene, model_dir):
    world = _aoi_file(
        tmp_path / "world.geojson", [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]
    )
    out = tmp_path / "out"
    proc = wastewatch(*_argv(survey_scene.scene, world, model_dir, out), *_local())
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["grid"]["crs"] == "EPSG:32632"
    assert json.loads((out / "detections.geojson").read_text())["features"]


def test_an_aoi_too_wide_for_one_utm_zone_says_so(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    from pipeline.errors import CRSError
    from pipeline.job.plan import _output_crs
    from pipeline.job.request import JobRequest

    frame = gpd.GeoDataFrame(geometry=[box(0, 40, 40, 50)], crs=4326)
    request = JobRequest(aoi="wide.geojson", scenes=("s.tif",), model="m", out="o")
    with pytest.raises(CRSError, match=r"40 degrees of longitude.*--crs"):
        _output_crs(request, frame)


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--date", "last-tuesday", ("--date", "not a date", "YYYY-MM-DD")),
        ("--date", "2026-13-01", ("--date", "YYYY-MM-DD")),
        ("--actors", "0", ("--actors", "greater than or equal to 1")),
        ("--threshold", "1.5", ("--threshold", "less than 1")),
        ("--tile-size", "0", ("--tile-size", "greater than 0")),
        ("--min-area", "-5", ("--min-area",)),
        ("--confidence-medium", "0.9", ("--confidence-medium", "--confidence-high (0.8)")),
        ("--confidence-high", "1.2", ("--confidence-high", "less than or equal to 1")),
    ],
)
def test_bad_parameters_are_one_line(tmp_path, survey_scene, model_dir, flag, value, words):
    out = tmp_path / "out"
    proc = wastewatch(
        *_argv(survey_scene.scene, survey_scene.aoi, model_dir, out), *_local(flag, value)
    )
    assert_bad_input(proc, *words)
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--epochs", "0"), ("--samples", "0"), ("--batch-size", "0"), ("--lr", "0")],
)
def test_train_that_would_train_nothing(tmp_path, train_scene, flag, value):
    proc = wastewatch(
        "train",
        "--scenes",
        str(train_scene.scene),
        "--labels",
        str(train_scene.truth),
        "--out",
        str(tmp_path / "m"),
        flag,
        value,
    )
    assert_bad_input(proc, flag, "must be positive")
    assert not (tmp_path / "m").exists()


def test_version():
    proc = wastewatch("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("wastewatch 0."), proc.stdout


def test_input_refused_while_ray_starts_early_is_one_line(tmp_path, survey_scene, model_dir):
    """A ``--no-prefect`` job on Ray starts Ray while it plans: input the plan refuses is still
    one line (Ray's start-up lines are held back, then dropped), nothing is written, and the
    process ends with its Ray stopped."""
    far = _aoi_file(
        tmp_path / "far.geojson",
        [[[100.0, 10.0], [100.01, 10.0], [100.01, 10.01], [100.0, 10.01], [100.0, 10.0]]],
    )
    proc = wastewatch(*_argv(survey_scene.scene, far, model_dir, tmp_path / "out"), "--no-prefect")
    assert_bad_input(proc, "does not overlap")
    assert not (tmp_path / "out").exists()
