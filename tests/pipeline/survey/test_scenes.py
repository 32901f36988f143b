"""Scenes chosen by date from files, folders and globs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from pipeline.errors import InputError
from pipeline.survey.scenes import scenes_for_date


def _scene(path, tag_key, tag_value):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=from_origin(500000, 5000000, 0.5, 0.5),
    ) as dst:
        dst.write(np.ones((3, 8, 8), np.uint8))
        if tag_key:
            dst.update_tags(**{tag_key: tag_value})
    return path


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "imagery"
    d.mkdir()
    _scene(d / "a.tif", "ACQUISITION_DATE", "2026-05-01")
    _scene(d / "b.tif", "TIFFTAG_DATETIME", "2026:06:10 10:00:00")
    _scene(d / "c.tif", "ACQUISITION_DATE", "2027-06-01")
    _scene(d / "undated.tif", None, None)
    (d / "notes.txt").write_text("not imagery")
    return d


def test_newest_first_on_or_before_the_date(folder):
    got = scenes_for_date([str(folder)], dt.date(2026, 6, 15))
    assert [p.path.rsplit("/", 1)[1] for p in got] == ["b.tif", "a.tif"]
    assert got[0].acquired == dt.date(2026, 6, 10)


def test_max_age_and_globs(folder):
    got = scenes_for_date([str(folder / "*.tif")], dt.date(2027, 6, 15), max_age_days=30)
    assert [p.path.rsplit("/", 1)[1] for p in got] == ["c.tif"]


def test_no_scene_for_the_date_is_a_clear_error(folder):
    with pytest.raises(InputError, match=r"no scene in .* acquired on or before 2026-01-01"):
        scenes_for_date([str(folder)], dt.date(2026, 1, 1))
