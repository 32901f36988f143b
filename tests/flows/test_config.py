"""The `serve` configuration: regions checked before anything is served, one line per problem
naming the file, the region and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import load_config
from pipeline.errors import InputError, InputNotFoundError
from tests.conftest import MUNICIPALITIES
from tests.helpers import assert_bad_input, wastewatch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "infra" / "surveys.example.toml"

needs_data = pytest.mark.skipif(not MUNICIPALITIES.exists(), reason=f"needs {MUNICIPALITIES}")

REGION = f"""
[[region]]
name = "monza-brianza"
municipalities = "{MUNICIPALITIES}"
select = [108014, "108026"]
scenes = ["imagery/", "/data/more/*.tif"]
model = "model"
out = "surveys/mb"
cron = "0 2 1 */3 *"
timezone = "Europe/Rome"
max_age_days = 120
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "surveys.toml"
    path.write_text(text)
    return path


@needs_data
def test_a_region_becomes_an_undated_survey_request(tmp_path):
    config = load_config(_write(tmp_path, "limit = 3\n" + REGION))
    assert config.limit == 3
    (region,) = config.regions
    assert (region.name, region.cron, region.timezone) == (
        "monza-brianza",
        "0 2 1 */3 *",
        "Europe/Rome",
    )
    request = region.request
    assert request.date is None
    assert request.select == ("108014", "108026")
    # relative paths are relative to the config file, patterns stay patterns
    assert request.scenes == (str(tmp_path / "imagery"), "/data/more/*.tif")
    assert request.model == str(tmp_path / "model")
    assert request.out == str(tmp_path / "surveys" / "mb")
    assert request.max_age_days == 120


@needs_data
@pytest.mark.parametrize(
    ("previous", "expected"),
    [("2026-06-15", "2026-06-15"), ("surveys/mb/2026-06-15", "surveys/mb/2026-06-15")],
)
def test_previous_is_a_date_or_a_folder_relative_to_the_config(tmp_path, previous, expected):
    config = load_config(_write(tmp_path, REGION + f'previous = "{previous}"\n'))
    got = config.regions[0].request.previous
    assert got == (expected if "/" not in expected else str(tmp_path / expected))


@needs_data
def test_the_example_config_is_valid():
    config = load_config(EXAMPLE)
    (region,) = config.regions
    assert region.timezone == "Europe/Rome" and region.cron == "0 2 1 */3 *"
    assert Path(region.request.municipalities).resolve() == MUNICIPALITIES.resolve()


def _swap(old: str, new: str) -> str:
    assert old in REGION
    return REGION.replace(old, new)


@needs_data
@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        (REGION.replace("[108014", "[108014,,"), InputError, ["not valid TOML", "line 5"]),
        ("regions = 1\n" + REGION, InputError, ["unknown key 'regions'", "[[region]]"]),
        ("limit = 2\n", InputError, ["no regions", "[[region]]"]),
        ("limit = 0\n" + REGION, InputError, ["limit", "greater than"]),
        (
            _swap("max_age_days", "max_age"),
            InputError,
            ["'monza-brianza'", "unknown key 'max_age'"],
        ),
        (_swap('model = "model"\n', ""), InputError, ["'monza-brianza'", "'model' is missing"]),
        (_swap("max_age_days = 120", 'date = "2026-01-01"'), InputError, ["'date'", "scheduled"]),
        (_swap("max_age_days = 120", "max_age_days = -1"), InputError, ["max_age_days", "-1"]),
        (
            _swap("monza_brianza.geojson", "nowhere.geojson"),
            InputNotFoundError,
            ["'monza-brianza'", "nowhere.geojson", "does not exist"],
        ),
        (_swap("108026", "999999"), InputError, ["'monza-brianza'", "999999"]),
        (_swap('cron = "0 2 1 */3 *"', 'cron = "0 2 1 */3"'), InputError, ["cron", "five fields"]),
        (_swap('cron = "0 2 1 */3 *"', 'cron = "0 25 1 */3 *"'), InputError, ["cron", "'0 25 1"]),
        (_swap("Europe/Rome", "Europe/Milano"), InputError, ["'Europe/Milano'", "IANA"]),
        (_swap('"monza-brianza"', '"monza/brianza"'), InputError, ["name", "survey/NAME"]),
        (REGION + REGION, InputError, ["'monza-brianza' appears twice"]),
    ],
    ids=[
        "syntax",
        "top-level-key",
        "no-regions",
        "limit",
        "unknown-key",
        "missing-key",
        "date",
        "bad-value",
        "municipalities-missing",
        "unknown-code",
        "cron-fields",
        "cron-value",
        "timezone",
        "name",
        "duplicate",
    ],
)
def test_bad_config_is_one_line_naming_file_region_and_key(tmp_path, text, error, words):
    path = _write(tmp_path, text)
    with pytest.raises(error) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for w in words:
        assert w in message, message


def test_missing_config_file(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"nope\.toml.*surveys\.example\.toml"):
        load_config(tmp_path / "nope.toml")


@needs_data
def test_serve_exits_2_with_one_line_on_a_bad_config(tmp_path):
    bad = _write(tmp_path, _swap("Europe/Rome", "Mars/Olympus"))
    assert_bad_input(wastewatch("serve", "--config", str(bad), "--check"), "Mars/Olympus")
    assert_bad_input(wastewatch("serve", "--config", str(tmp_path / "nope.toml")), "nope.toml")


@needs_data
def test_serve_check_prints_the_deployments():
    proc = wastewatch("serve", "--config", str(EXAMPLE), "--check")
    assert proc.returncode == 0, proc.stderr
    assert "survey/monza-brianza: 0 2 1 */3 * (Europe/Rome)" in proc.stdout
    assert "aoi-job/aoi-job" in proc.stdout
