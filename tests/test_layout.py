"""The house rules of the layout: import contracts hold, modules stay small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


def test_no_module_over_400_lines():
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for package in ("pipeline", "models", "flows")
        for p in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in sizes.items() if v > 400} == {}


def test_pipeline_has_one_subpackage_per_part_of_the_data_flow():
    parts = {p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").exists()}
    assert {"geo", "job", "report", "training", "synthetic", "evaluation", "cli"} <= parts
