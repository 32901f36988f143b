"""Shared fixtures: tiny seeded scenes with a real CRS, a small trained model, Ray, Prefect."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# torch's structured trace logger emits large DEBUG payloads (fx graphs) that pytest's log
# capture would format for every traced model.
logging.getLogger("torch.__trace").propagate = False

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MUNICIPALITIES = SHARED / "data" / "municipalities" / "monza_brianza.geojson"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def train_scene(tmp_path_factory: pytest.TempPathFactory):
    from pipeline.synthetic import synth_scene

    return synth_scene(tmp_path_factory.mktemp("train"), size=1024, gsd=0.5, seed=11, landfills=40)


@pytest.fixture(scope="session")
def survey_scene(tmp_path_factory: pytest.TempPathFactory):
    from pipeline.synthetic import synth_scene

    return synth_scene(tmp_path_factory.mktemp("survey"), size=640, gsd=0.5, seed=12, landfills=10)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, train_scene) -> Path:
    from pipeline.training.train import train_patch_model

    out = tmp_path_factory.mktemp("model") / "model"
    train_patch_model(
        [str(train_scene.scene)],
        [str(train_scene.truth)],
        out,
        patch_size=32,
        channels=(16, 32, 64),
        epochs=5,
        per_class=2000,
        seed=0,
    )
    return out


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray for the whole session (start-up costs about 5 s)."""
    import ray

    from pipeline.cluster import await_ray_stop

    await_ray_stop()  # a job's own local Ray may still be stopping behind it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API on a temporary database for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
