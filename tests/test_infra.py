"""The deployment material in infra/ parses and keeps its security defaults (docker and
Kubernetes are not available here: the files are read as YAML)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[1] / "infra"


def _load(name: str) -> dict:
    doc = yaml.safe_load((INFRA / name).read_text())
    assert isinstance(doc, dict), name
    return doc


def test_compose_runs_postgres_a_prefect_server_on_it_and_serve():
    services = _load("compose.yaml")["services"]
    assert set(services) == {"postgres", "prefect-server", "serve"}
    url = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url.startswith("postgresql+asyncpg://prefect:") and "@postgres:5432/prefect" in url
    assert services["prefect-server"]["command"][:3] == ["prefect", "server", "start"]
    assert services["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"

    serve = services["serve"]
    assert serve["command"] == ["wastewatch", "serve", "--config", "/etc/wastewatch/surveys.toml"]
    assert serve["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert any(v.endswith(":/etc/wastewatch/surveys.toml:ro") for v in serve["volumes"])
    builds = [s for s in services.values() if "build" in s]
    assert builds and all(b["build"]["dockerfile"] == "infra/Dockerfile" for b in builds)
    assert serve["image"] == builds[0]["image"]


def test_compose_publishes_ports_on_localhost_only():
    published = [
        str(p) for s in _load("compose.yaml")["services"].values() for p in s.get("ports", [])
    ]
    assert published
    assert all(p.startswith("127.0.0.1:") for p in published), published


def test_compose_asks_for_secrets_instead_of_defaulting_them():
    text = (INFRA / "compose.yaml").read_text()
    assert re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", text)
    assert all(":?" in m for m in re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", text))


def test_ray_clusters_keep_token_authentication_on():
    cluster = _load("ray-cluster.yaml")
    starts = cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"]
    ray_starts = [c for c in starts if "ray start" in c]
    assert ray_starts and all("RAY_AUTH_MODE=token" in c for c in ray_starts)
    assert "127.0.0.1" in " ".join(cluster["head_start_ray_commands"])  # dashboard

    spec = _load("kuberay-raycluster.yaml")["spec"]
    templates = [spec["headGroupSpec"]["template"]] + [
        g["template"] for g in spec["workerGroupSpecs"]
    ]
    containers = [c for t in templates for c in t["spec"]["containers"]]
    for c in containers:
        env = {e["name"]: e for e in c["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token", c["name"]
        assert "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"], c["name"]

    assert "ENV RAY_AUTH_MODE=token" in (INFRA / "Dockerfile").read_text()


def test_sqlalchemy_is_pinned_below_2_1_for_cron_schedules():
    project = tomllib.loads((INFRA.parent / "pyproject.toml").read_text())["project"]
    assert "sqlalchemy<2.1" in project["dependencies"]
