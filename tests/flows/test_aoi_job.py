"""End to end through the real Prefect flow and a real local Ray."""

from __future__ import annotations

import json

import pytest

from pipeline.evaluation import evaluate_detections
from pipeline.job import JobRequest


@pytest.mark.slow
def test_aoi_job_flow(tmp_path, survey_scene, model_dir, ray_local, prefect_harness):
    from prefect import get_client

    from flows.job import aoi_job

    out = tmp_path / "out"
    request = JobRequest(
        aoi=str(survey_scene.aoi),
        scenes=(str(survey_scene.scene),),
        model=str(model_dir),
        out=str(out),
        tile_size=256,
        survey_date="2026-06-15",
    )
    state = aoi_job(request, return_state=True)
    assert state.is_completed(), state
    assert state.result() == str(out)
    run = json.loads((out / "run.json").read_text())
    assert run["execution"]["executor"] == "ray" and run["execution"]["tiles"] >= 4
    metrics = evaluate_detections(out / "detections.geojson", survey_scene.truth)
    assert metrics["recall"] >= 0.8 and metrics["precision"] >= 0.7, metrics

    import asyncio

    async def flow_runs():
        async with get_client() as client:
            return await client.read_flow_runs()

    runs = asyncio.run(flow_runs())
    assert any(r.name and r.state and r.state.is_completed() for r in runs)
    task_names = set()

    async def task_runs():
        async with get_client() as client:
            return await client.read_task_runs()

    task_names = {t.name.rsplit("-", 1)[0] for t in asyncio.run(task_runs())}
    assert {"plan", "run_inference", "detections", "provenance"} <= task_names


@pytest.mark.slow
def test_flow_bad_input_leaves_no_output(tmp_path, survey_scene, prefect_harness):
    from flows.job import aoi_job
    from pipeline.errors import CheckpointError

    with pytest.raises(CheckpointError):
        aoi_job(
            JobRequest(
                aoi=str(survey_scene.aoi),
                scenes=(str(survey_scene.scene),),
                model=str(tmp_path / "missing"),
                out=str(tmp_path / "out"),
            )
        )
    assert not (tmp_path / "out").exists()
