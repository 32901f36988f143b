"""`wastewatch serve` and `submit` against a real Prefect server: a scheduled survey runs by
itself, jobs are submitted to the served aoi-job deployment, a stopped serve leaves the
schedules active."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import pytest
import rasterio
from shapely.geometry import box

from tests.helpers import assert_bad_input

pytestmark = pytest.mark.slow

#: UTC+14: its date differs from UTC's from 10:00 UTC on, so the scheduled date is checked.
TIMEZONE = "Pacific/Kiritimati"
REGION = "strips"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        WASTEWATCH_STATE_DIR=str(home / "state"),
        RAY_AUTH_MODE="disabled",
        **extra,
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT, grace: float = 30) -> None:
    """Stop a process started in its own session, then anything it left in that session."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the flow-run processes it spawned, if any


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `prefect server start` on a free port with a temporary PREFECT_HOME."""
    import sqlalchemy

    major_minor = tuple(int(p) for p in sqlalchemy.__version__.split(".")[:2])
    assert major_minor < (2, 1), (
        f"SQLAlchemy {sqlalchemy.__version__}: Prefect 3.8's scheduler creates no cron runs with "
        "SQLAlchemy >= 2.1; reinstall the project (pyproject pins sqlalchemy<2.1)"
    )
    home = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            f"{port}",
        ],
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "Prefect server did not start in 120 s"
        time.sleep(1)
    yield {"url": url, "home": home}
    _stop(proc, signal.SIGTERM)
    log.close()


@pytest.fixture(scope="module")
def strips(tmp_path_factory, survey_scene):
    """Two strip-shaped municipalities over the survey scene."""
    base = tmp_path_factory.mktemp("strips")
    with rasterio.open(survey_scene.scene) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    step = (right - left) / 2
    path = base / "municipalities.geojson"
    gpd.GeoDataFrame(
        {"com_istat_code": ["900001", "900002"], "name": ["Alfa", "Beta"]},
        geometry=[box(left + i * step, bottom, left + (i + 1) * step, top) for i in range(2)],
        crs=crs,
    ).to_crs(4326).to_file(path)
    return path


@pytest.fixture(scope="module")
def serving(server, strips, survey_scene, model_dir, tmp_path_factory):
    """`wastewatch serve` of one region whose survey is due every minute."""
    base = tmp_path_factory.mktemp("serve")
    (base / "surveys.toml").write_text(
        f"""
[[region]]
name = "{REGION}"
municipalities = "{strips}"
scenes = ["{survey_scene.scene}"]
model = "{model_dir}"
out = "region"
cron = "* * * * *"
timezone = "{TIMEZONE}"
max_age_days = 100000
tile_size = 256
executor = "local"
"""
    )
    env = _env(server["home"], server["url"], PREFECT_RUNNER_POLL_FREQUENCY="2")
    log = (base / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--config", str(base / "surveys.toml")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not _deployments(server["url"]) >= {"survey/strips", "aoi-job/aoi-job"}:
        assert proc.poll() is None, (base / "serve.log").read_text()[-3000:]
        assert time.monotonic() < deadline, (base / "serve.log").read_text()[-3000:]
        time.sleep(1)
    yield {"proc": proc, "root": base / "region", "env": env, "log": base / "serve.log"}
    _stop(proc)
    log.close()


def _deployments(url: str) -> set[str]:
    """The deployments a runner polls (READY): a serve that is up, signal handlers and all."""
    request = urllib.request.Request(
        f"{url}/deployments/filter", data=b"{}", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        rows = json.loads(r.read())
    flows = {}
    for row in rows:
        if row["flow_id"] not in flows:
            with urllib.request.urlopen(f"{url}/flows/{row['flow_id']}", timeout=10) as f:
                flows[row["flow_id"]] = json.loads(f.read())["name"]
    return {f"{flows[r['flow_id']]}/{r['name']}" for r in rows if r["status"] == "READY"}


def _client_call(url: str, call):  # type: ignore[no-untyped-def]
    """Run ``call(client)`` with a Prefect client of the server at ``url``."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def run():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return await call(client)

    with temporary_settings({PREFECT_API_URL: url}):
        return asyncio.run(run())


def _job_args(survey_scene, model_dir, out, aoi=None) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        "--aoi",
        str(aoi or survey_scene.aoi),
        "--scenes",
        str(survey_scene.scene),
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--tile-size",
        "256",
        "--executor",
        "local",
    ]


def test_submit_without_a_served_deployment_says_to_start_serve(
    server, survey_scene, model_dir, tmp_path
):
    proc = _cli(
        "submit",
        *_job_args(survey_scene, model_dir, tmp_path / "out"),
        env=_env(tmp_path, server["url"]),
    )
    assert_bad_input(proc, "aoi-job", "wastewatch serve")


def test_submit_runs_the_job_on_the_server(serving, survey_scene, model_dir, tmp_path):
    out = tmp_path / "out"
    proc = _cli("submit", *_job_args(survey_scene, model_dir, out), env=serving["env"])
    assert proc.returncode == 0, proc.stderr + serving["log"].read_text()[-3000:]
    assert f"outputs in {out}/" in proc.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["execution"]["executor"] == "local"
    assert json.loads((out / "detections.geojson").read_text())["features"]


def test_submit_bad_input_is_the_line_run_gives(serving, survey_scene, model_dir, tmp_path):
    far = tmp_path / "far.geojson"
    gpd.GeoDataFrame(geometry=[box(170.0, -40.0, 170.01, -39.99)], crs=4326).to_file(far)
    args = _job_args(survey_scene, model_dir, tmp_path / "out", aoi=far)
    submitted = _cli("submit", *args, env=serving["env"])
    assert_bad_input(submitted, "overlap")
    local = _cli("run", *args, "--no-prefect", env=serving["env"])
    assert_bad_input(local)
    assert submitted.stderr == local.stderr
    assert not (tmp_path / "out").exists()


def test_submit_internal_failure_exits_1_with_the_run_link(
    serving, survey_scene, model_dir, tmp_path
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = _cli("submit", *_job_args(survey_scene, model_dir, blocker / "out"), env=serving["env"])
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "FileExistsError" in lines[0] and "/runs/flow-run/" in lines[0], lines[0]


def test_submit_no_wait_returns_the_flow_run(serving, survey_scene, model_dir, tmp_path):
    out = tmp_path / "out"
    start = time.monotonic()
    proc = _cli("submit", *_job_args(survey_scene, model_dir, out), "--no-wait", env=serving["env"])
    assert proc.returncode == 0, proc.stderr
    assert not (out / "run.json").exists() or time.monotonic() - start < 30
    found = re.search(r"/runs/flow-run/([0-9a-f-]{36})", proc.stdout)
    assert found, proc.stdout
    flow_run_id = found.group(1)
    url = serving["env"]["PREFECT_API_URL"]
    deadline = time.monotonic() + 180
    while True:
        run = _client_call(url, lambda c: c.read_flow_run(flow_run_id))
        if run.state and run.state.is_final():
            break
        assert time.monotonic() < deadline, run.state
        time.sleep(2)
    assert run.state.is_completed(), run.state
    assert (out / "run.json").is_file()


def test_scheduled_survey_runs_by_itself(serving, tmp_path):
    root = serving["root"]
    deadline = time.monotonic() + 200
    while not list(root.glob("*/survey.json")):
        assert serving["proc"].poll() is None, serving["log"].read_text()[-3000:]
        assert time.monotonic() < deadline, serving["log"].read_text()[-3000:]
        time.sleep(2)
    folder = next(root.glob("*/survey.json")).parent
    assert (folder / "report.html").is_file()
    info = json.loads((folder / "survey.json").read_text())
    assert set(info["municipalities"]) == {"900001", "900002"}
    assert info["date"] == folder.name

    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    # the survey's folder is published just before its flow run reports Completed
    while True:
        runs = _client_call(
            serving["env"]["PREFECT_API_URL"],
            lambda c: c.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[REGION]))
            ),
        )
        done = [r for r in runs if r.state and r.state.is_completed()]
        if done or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert done, [(r.name, r.state) for r in runs]
    dates = {r.expected_start_time.astimezone(ZoneInfo(TIMEZONE)).date() for r in done}
    assert dt.date.fromisoformat(folder.name) in dates
    assert all(r.parameters["request"].get("date") is None for r in done)


def test_stopped_serve_leaves_the_schedules_active(serving):
    proc = serving["proc"]
    proc.send_signal(signal.SIGTERM)  # what docker stop and systemd send
    assert proc.wait(60) == 0, serving["log"].read_text()[-3000:]

    async def read(client):  # type: ignore[no-untyped-def]
        return await client.read_deployment_by_name(f"survey/{REGION}")

    deployment = _client_call(serving["env"]["PREFECT_API_URL"], read)
    assert not deployment.paused
    assert deployment.schedules and all(s.active for s in deployment.schedules)
    assert deployment.schedules[0].schedule.timezone == TIMEZONE
    assert deployment.global_concurrency_limit.limit == 1  # runs of a region never overlap


def test_serve_and_submit_need_a_server(tmp_path, strips, survey_scene, model_dir):
    config = tmp_path / "surveys.toml"
    config.write_text(
        f"""
[[region]]
name = "{REGION}"
municipalities = "{strips}"
scenes = ["{survey_scene.scene}"]
model = "{model_dir}"
out = "region"
cron = "0 2 1 */3 *"
timezone = "Europe/Rome"
"""
    )
    env = _env(tmp_path)
    assert "PREFECT_API_URL" not in env
    assert_bad_input(
        _cli("serve", "--config", str(config), env=env), "PREFECT_API_URL", "prefect server start"
    )
    assert_bad_input(
        _cli("submit", *_job_args(survey_scene, model_dir, tmp_path / "out"), env=env),
        "PREFECT_API_URL",
        "prefect server start",
    )
