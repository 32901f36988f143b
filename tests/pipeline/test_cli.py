"""The command line as users meet it: real subprocesses, exit codes and stderr."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from tests.helpers import assert_bad_input, wastewatch


@pytest.fixture()
def run_args(survey_scene, model_dir, tmp_path):
    return {
        "--aoi": str(survey_scene.aoi),
        "--scenes": str(survey_scene.scene),
        "--model": str(model_dir),
        "--out": str(tmp_path / "out"),
    }


def _argv(args: dict[str, str]) -> list[str]:
    return ["run", *[x for kv in args.items() for x in kv], "--no-prefect", "--executor", "local"]


def test_help_is_fast_and_light():
    code = "import sys, pipeline.cli; print('torch' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    proc = wastewatch("--help")
    assert proc.returncode == 0 and "synth" in proc.stdout and "run" in proc.stdout


def test_missing_scene(run_args, tmp_path):
    run_args["--scenes"] = str(tmp_path / "nope.tif")
    assert_bad_input(wastewatch(*_argv(run_args)), "nope.tif", "does not exist")
    assert not (tmp_path / "out").exists()


def test_scene_without_crs(run_args, tmp_path):
    bad = tmp_path / "nocrs.tif"
    with rasterio.open(
        bad,
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=3,
        dtype="uint8",
        transform=from_origin(500000, 5000000, 0.5, 0.5),
    ) as dst:
        dst.write(np.full((3, 64, 64), 100, np.uint8))
    run_args["--scenes"] = str(bad)
    assert_bad_input(wastewatch(*_argv(run_args)), "nocrs.tif", "no CRS", "rio edit-info")
    assert list(tmp_path.iterdir()) == [bad]


def test_aoi_that_misses_the_scene(run_args, tmp_path):
    aoi = tmp_path / "far.geojson"
    aoi.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [
                                    [9.0, 45.0],
                                    [9.01, 45.0],
                                    [9.01, 45.01],
                                    [9.0, 45.01],
                                    [9.0, 45.0],
                                ]
                            ],
                        },
                    }
                ],
            }
        )
    )
    run_args["--aoi"] = str(aoi)
    assert_bad_input(wastewatch(*_argv(run_args)), "does not overlap")
    assert list(tmp_path.iterdir()) == [aoi]


def test_model_that_is_not_a_checkpoint(run_args, tmp_path):
    fake = tmp_path / "model.pt"
    fake.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    run_args["--model"] = str(fake)
    assert_bad_input(wastewatch(*_argv(run_args)), "model.pt", "not a wastewatch checkpoint")
    assert list(tmp_path.iterdir()) == [fake]


def test_existing_output_is_kept(run_args, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("analyst notes")
    assert_bad_input(wastewatch(*_argv(run_args)), "already exists", "--overwrite")
    assert (tmp_path / "out" / "keep.txt").read_text() == "analyst notes"


def test_usage_error_is_one_line():
    assert_bad_input(wastewatch("run", "--aoi", "x.geojson"), "Missing option")


def test_eval_prints_json(survey_scene):
    proc = wastewatch("eval", "--pred", str(survey_scene.truth), "--truth", str(survey_scene.truth))
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert m["precision"] == m["recall"] == m["f1"] == 1.0 and m["mean_iou"] == 1.0


def test_synth_and_run_through_the_cli(tmp_path, model_dir):
    proc = wastewatch(
        "synth",
        "scene",
        "--out",
        str(tmp_path / "s"),
        "--size",
        "384",
        "--seed",
        "4",
        "--landfills",
        "5",
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    proc = wastewatch(
        "run",
        "--aoi",
        str(tmp_path / "s" / "aoi.geojson"),
        "--scenes",
        str(tmp_path / "s" / "scene.tif"),
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--no-prefect",
        "--executor",
        "local",
        "--tile-size",
        "256",
        "--confidence-high",
        "0.95",
        "--confidence-medium",
        "0.7",
    )
    assert proc.returncode == 0, proc.stderr
    assert "detections.geojson" in proc.stdout and "report.html" in proc.stdout
    assert {p.name for p in out.iterdir()} == {
        "probabilities.tif",
        "probabilities.qml",
        "mask.tif",
        "mask.qml",
        "detections.geojson",
        "detections.gpkg",
        "detections.qml",
        "run.json",
        "quicklook.png",
        "report.html",
    }
    # the thresholds given on the command line set the confidence bands
    sites = json.loads((out / "detections.geojson").read_text())["features"]
    assert sites
    for site in sites:
        p = site["properties"]
        band = "high" if p["score_max"] >= 0.95 else "medium" if p["score_max"] >= 0.7 else "low"
        assert p["confidence"] == band, p
    run = json.loads((out / "run.json").read_text())
    assert run["parameters"]["confidence_high"] == 0.95
    png = (out / "quicklook.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 384
