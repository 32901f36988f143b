"""The survey as a Prefect flow: a task per municipality, artifacts for the UI."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.pipeline.survey.test_survey import D1, region  # noqa: F401  (module fixture)


@pytest.mark.slow
def test_survey_flow_tasks_and_artifacts(region, model_dir, tmp_path, prefect_harness):  # noqa: F811
    from prefect import get_client

    from flows.survey import survey_with_concurrency
    from pipeline.survey import SurveyRequest

    request = SurveyRequest(
        municipalities=str(region["municipalities"]),
        scenes=(str(region["imagery"]),),
        model=str(model_dir),
        date=D1,
        out=str(tmp_path / "region"),
        max_age_days=300,
        tile_size=256,
        executor="local",
    )
    folder = survey_with_concurrency(request)
    assert json.loads((tmp_path / "region" / D1 / "survey.json").read_text())["sites"] > 0
    assert folder.endswith(D1)

    async def read():
        async with get_client() as client:
            tasks = await client.read_task_runs()
            artifacts = await client.read_artifacts()
        return tasks, artifacts

    tasks, artifacts = asyncio.run(read())
    names = {t.name.rsplit("-", 1)[0] for t in tasks}
    assert {"municipality-900001", "municipality-900002", "municipality-900003"} <= names
    keys = {a.key for a in artifacts}
    assert {"survey-region-sites", "survey-region-summary", "survey-region-report"} <= keys
