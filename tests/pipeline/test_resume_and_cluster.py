"""Jobs that survive what happens to clusters: a killed job resumed by tile, a job on a
two-node Ray cluster; both end byte for byte as an undisturbed local run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.job import JobRequest, run_job

from ..helpers import wastewatch

# (detections.gpkg records when it was written)
OUTPUTS = ("probabilities.tif", "mask.tif", "detections.geojson")
TILE = 128


def _args(scene, model_dir, out) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        "run",
        "--aoi", str(scene.aoi),
        "--scenes", str(scene.scene),
        "--model", str(model_dir),
        "--out", str(out),
        "--tile-size", str(TILE),
        "--date", "2026-06-15",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory, survey_scene, model_dir) -> Path:
    """An undisturbed run, in this process, tile by tile."""
    out = tmp_path_factory.mktemp("reference") / "out"
    run_job(
        JobRequest(
            aoi=str(survey_scene.aoi),
            scenes=(str(survey_scene.scene),),
            model=str(model_dir),
            out=str(out),
            tile_size=TILE,
            executor="local",
            survey_date="2026-06-15",
        )
    )
    return out


def _same_outputs(out: Path, reference: Path) -> None:
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def _ledger(parent: Path) -> Path | None:
    found = list(parent.glob(".out.partial-*/work/ledger.txt"))
    return found[0] if found else None


def _finished(ledger: Path) -> set[str]:
    return {
        line.split()[0]
        for line in ledger.read_text().splitlines(keepends=True)
        if line.endswith("\n")
    }


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_job_killed_and_resumed_redoes_no_finished_tile(
    tmp_path, survey_scene, model_dir, reference, executor
):
    out = tmp_path / "out"
    args = [*_args(survey_scene, model_dir, out), "--no-prefect", "--executor", executor]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its Ray (when it starts one) shares its fate
    )
    total = json.loads((reference / "run.json").read_text())["tiles"]["planned"]
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ledger = _ledger(tmp_path)
            if ledger is not None and len(_finished(ledger)) >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the job ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    ledger = _ledger(tmp_path)
    assert ledger is not None and not out.exists()
    done = _finished(ledger)
    assert 3 <= len(done) < total

    resumed = wastewatch(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    execution = json.loads((out / "run.json").read_text())["execution"]
    assert execution["resumed_tiles"] == len(done)
    assert execution["tiles"] == total - len(done)  # none of the finished tiles run again
    _same_outputs(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_without_resume_a_killed_job_starts_afresh(tmp_path, survey_scene, model_dir, reference):
    """A partial run of the same job is not continued unless asked (and then removed)."""
    out = tmp_path / "out"
    stage = tmp_path / ".out.partial-0123456789abcdef" / "work"
    stage.mkdir(parents=True)
    (stage / "ledger.txt").write_text("stale 0 0 1 1 0\n")
    done = wastewatch(*_args(survey_scene, model_dir, out), "--no-prefect", "--executor", "local")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "run.json").read_text())["execution"]["resumed_tiles"] == 0
    _same_outputs(out, reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_two_node_cluster_gives_the_outputs_of_a_local_run(
    tmp_path, survey_scene, model_dir, reference
):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "out"
        proc = wastewatch(
            *_args(survey_scene, model_dir, out), "--no-prefect", "--ray-address", cluster.address
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        cluster.shutdown()
    execution = json.loads((out / "run.json").read_text())["execution"]
    assert execution["executor"] == "ray"
    _same_outputs(out, reference)


def test_the_flow_resumes_a_failed_job_from_its_tiles(
    tmp_path, survey_scene, model_dir, reference, prefect_harness, monkeypatch
):
    import pipeline.job.run as steps
    from flows.job import aoi_job

    request = JobRequest(
        aoi=str(survey_scene.aoi),
        scenes=(str(survey_scene.scene),),
        model=str(model_dir),
        out=str(tmp_path / "out"),
        tile_size=TILE,
        executor="local",
        survey_date="2026-06-15",
    )
    vectorize = steps.vectorize  # what run_job and the flow call after inference

    def disk_full(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError("No space left on device")

    monkeypatch.setattr(steps, "vectorize", disk_full)
    with pytest.raises(OSError):
        run_job(request)
    monkeypatch.setattr(steps, "vectorize", vectorize)
    aoi_job(request.model_copy(update={"resume": True}))
    execution = json.loads((tmp_path / "out" / "run.json").read_text())["execution"]
    total = json.loads((reference / "run.json").read_text())["tiles"]["planned"]
    assert execution["resumed_tiles"] == total and execution["tiles"] == 0
    _same_outputs(tmp_path / "out", reference)


def test_a_local_ray_stopped_behind_is_gone_before_the_next_session_starts(tmp_path):
    """``ray_session(stop_behind=True)`` returns while Ray stops in a thread; the next session
    waits for it and gets a Ray of its own, and the interpreter exits cleanly after it."""
    code = """
import time
from pipeline.cluster import _STOPPING, ray_session
with ray_session(num_cpus=1, stop_behind=True) as ray:
    first = ray.get_runtime_context().get_job_id()
    assert ray.get(ray.put(1)) == 1
assert len(_STOPPING) == 1  # stopping in its thread: we went on
with ray_session(num_cpus=1, stop_behind=True) as ray:
    assert not _STOPPING  # the first stop was awaited
    assert ray.get(ray.put(2)) == 2
    second = ray.get_runtime_context().get_job_id()
print("ok", first, second)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
    assert "Traceback" not in proc.stderr


def test_cpu_actors_take_the_session_s_workers_with_a_bounded_gdal_cache(tmp_path):
    """In a session started by ``pipeline.cluster``, a one-thread CPU actor needs no runtime
    environment of its own (it then takes one of the workers Ray started with the session
    instead of waiting for a new process), and still computes on one thread with GDAL's cache
    bounded; an actor of more threads, or in a session started by someone else (no bounded
    cache in its workers), gets both variables."""
    code = """
import json, os, time
from pipeline.cluster import ray_session
from pipeline.job.placement import actor_env as _actor_env

class Probe:
    def env(self):
        return [os.environ.get("GDAL_CACHEMAX"), os.environ.get("OMP_NUM_THREADS")]

    def pid(self):
        return os.getpid()

def idle_workers():
    found = set()
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and open(f"/proc/{p}/cmdline", "rb").read().startswith(b"ray::IDLE"):
                found.add(int(p))
        except OSError:
            pass
    return found

with ray_session(num_cpus=2) as ray:
    deadline = time.time() + 60
    while len(idle_workers()) < 2 and time.time() < deadline:  # the workers Ray starts
        time.sleep(0.2)
    started = idle_workers()
    one, two = _actor_env(ray, 1), _actor_env(ray, 2)
    opts = {"runtime_env": {"env_vars": one}} if one else {}
    probe = ray.remote(num_cpus=0, **opts)(Probe).remote()
    seen = ray.get(probe.env.remote())
    took = ray.get(probe.pid.remote()) in started
    seen2 = ray.get(ray.remote(num_cpus=0, runtime_env={"env_vars": two})(Probe).remote().env.remote())
import ray
ray.init(num_cpus=1, include_dashboard=False)
other = _actor_env(ray, 1)
ray.shutdown()
print(json.dumps([one, two, seen, seen2, other, took]))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("GDAL_CACHEMAX", "OMP_NUM_THREADS")}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    one, two, seen, seen2, other, took = json.loads(proc.stdout.splitlines()[-1])
    assert one == {}
    assert took, "the one-thread actor waited for a new process"
    assert seen == ["128", "1"]
    assert two == {"OMP_NUM_THREADS": "2", "GDAL_CACHEMAX": "128"}
    assert seen2 == ["128", "2"]
    assert other == {"OMP_NUM_THREADS": "1", "GDAL_CACHEMAX": "128"}


def test_a_ray_started_early_is_taken_over_by_the_next_session(tmp_path):
    """``start_ray_early`` connects in a thread of its own; the next ``ray_session`` takes that
    Ray over (its workers import our packages, not a user's ``pipeline/`` in the working
    directory), shows Ray's held-back lines, and stops it behind; afterwards the process is back
    in its own directory, with no Ray."""
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "__init__.py").write_text("raise ImportError('the user folder')\n")
    code = """
import logging, os
from pipeline.cluster import _EARLY, _STOPPING, await_ray_stop, ray_session, start_ray_early
import pipeline
here = os.getcwd()
start_ray_early()
assert len(_EARLY) == 1
with ray_session(stop_behind=True) as ray:
    assert not _EARLY and os.getcwd() == here
    where = ray.get(ray.remote(lambda: __import__("pipeline").__file__).remote())
    assert where == pipeline.__file__, where
    logging.getLogger("ray").warning("a line of Ray's, shown")
assert len(_STOPPING) == 1  # stopping in its own thread: we went on
await_ray_stop()
assert not ray.is_initialized()
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-P", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
    assert "a line of Ray's, shown" in proc.stderr
    assert "SIGTERM handler" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_ray_started_early_for_nothing_is_stopped_and_says_nothing(tmp_path):
    """Abandoned (the plan refused the input), the early Ray is stopped once it has started,
    nothing it logged reaches the terminal, and the interpreter exits."""
    code = """
import logging
from pipeline.cluster import _EARLY, abandon_early_ray, start_ray_early
start_ray_early()
logging.getLogger("ray").warning("a line of Ray's, dropped")
abandon_early_ray()
assert not _EARLY
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
    assert proc.stderr.strip() == "", proc.stderr
