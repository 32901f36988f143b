"""What an operator sees of a survey in the Prefect UI: a table of sites and a short summary,
read back from the published survey folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["artifact_key", "survey_markdown", "survey_table"]

_COLUMNS = ("rank", "site_id", "municipality", "status", "confidence", "area_m2", "score_max")


def artifact_key(region: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) for a region."""
    slug = re.sub(r"[^a-z0-9]+", "-", region.lower()).strip("-") or "region"
    return f"survey-{slug}-{what}"


def survey_table(folder: Path) -> list[dict[str, Any]]:
    """The survey's sites by status priority and rank, one dict per row."""
    doc = json.loads((folder / "detections.geojson").read_text())
    rows = []
    for f in doc["features"]:
        p = f["properties"]
        rows.append({c: p.get(c) for c in _COLUMNS})
    return rows


def survey_markdown(folder: Path) -> str:
    """A few lines: date, sites by status, municipalities done, where the report is."""
    info = json.loads((folder / "survey.json").read_text())
    counts = ", ".join(
        f"**{n}** {s.replace('_', ' ')}" for s, n in info["counts_by_status"].items()
    )
    done = sum(1 for m in info["municipalities"].values() if m["job"])
    return (
        f"# Survey {info['date']} of {folder.parent.name}\n\n"
        f"{info['sites']} sites: {counts or 'none'}.\n\n"
        f"{done} of {len(info['municipalities'])} municipalities had imagery; "
        f"compared with {info['previous'] or 'no earlier survey'}.\n\n"
        f"Report: `{folder / 'report.html'}`\n"
    )
