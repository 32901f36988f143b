"""The change rule on exact polygons: statuses, carried ids, splits and merges."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
from shapely import affinity
from shapely.geometry import box

from pipeline.survey.changes import compare_surveys, inspection_order

CRS = "EPSG:32632"
D1, D2 = dt.date(2026, 6, 15), dt.date(2027, 6, 15)


def _frame(rows, **extra):
    geoms = [g for _, g in rows]
    data = {
        "site_id": [i for i, _ in rows],
        "area_m2": [g.area for g in geoms],
        "score_max": [0.9] * len(rows),
        "score_mean": [0.7] * len(rows),
        **extra,
    }
    return gpd.GeoDataFrame(data, geometry=geoms, crs=CRS)


def _previous(rows):
    return _frame(rows, first_seen=[D1] * len(rows))


def _by_id(result):
    return dict(zip(result.current["site_id"], result.current["status"], strict=True))


def test_every_status_of_a_revisit():
    a, b, c, d, e = (box(x, 0, x + 20, 20) for x in (0, 100, 200, 300, 400))
    previous = _previous([("A", a), ("B", b), ("C", c), ("D", d), ("E", e)])
    current = _frame(
        [
            ("x1", affinity.translate(a, 2, 1)),  # same size, moved a little: persisting
            ("x2", affinity.scale(b, 1.5, 1.5, origin=(100, 0))),  # 2.25x area, centroid moves
            ("x3", affinity.scale(c, 0.7, 0.7)),  # 0.49x area
            ("x4", box(600, 0, 620, 20)),  # nowhere before
        ]
    )
    # D had imagery this time (disappeared); E had none (not observed)
    observed = {True: 1.0, False: 0.0}
    result = compare_surveys(
        current, previous, D2, lambda g: observed[g.intersects(d)], threshold=0.25
    )
    assert _by_id(result) == {"A": "persisting", "B": "grown", "C": "shrunk", "x4": "new"}
    gone = dict(zip(result.changes["site_id"], result.changes["status"], strict=True))
    assert gone == {"D": "disappeared", "E": "not_observed"}
    first = dict(zip(result.current["site_id"], result.current["first_seen"], strict=True))
    assert first == {"A": D1, "B": D1, "C": D1, "x4": D2}


def test_threshold_bounds_grown_and_shrunk():
    a = box(0, 0, 20, 20)
    previous = _previous([("A", a)])
    for k, want in ((1.2, "persisting"), (1.3, "grown"), (0.8, "persisting"), (0.7, "shrunk")):
        grown = affinity.scale(a, k**0.5, k**0.5)
        result = compare_surveys(_frame([("x", grown)]), previous, D2, lambda g: 1.0)
        assert _by_id(result) == {"A": want}, k


def test_a_split_keeps_the_id_on_the_largest_piece():
    a = box(0, 0, 40, 20)
    previous = _previous([("A", a)])
    current = _frame([("big", box(0, 0, 25, 20)), ("small", box(30, 0, 40, 20))])
    result = compare_surveys(current, previous, D2, lambda g: 1.0)
    statuses = _by_id(result)
    # the pieces together are 35/40 of the site: persisting; the smaller piece keeps its own id
    assert statuses == {"A": "persisting", "small": "persisting"}
    assert result.changes.empty and result.merged == {}
    first = dict(zip(result.current["site_id"], result.current["first_seen"], strict=True))
    assert first["small"] == D1


def test_a_merge_keeps_the_id_of_the_largest_overlap():
    previous = _previous([("A", box(0, 0, 30, 20)), ("B", box(35, 0, 45, 20))])
    current = _frame([("x", box(0, 0, 45, 20))])
    result = compare_surveys(current, previous, D2, lambda g: 1.0)
    assert _by_id(result) == {"A": "persisting"}  # 900 m² from 800 m²
    assert result.merged == {"B": "A"}
    assert result.changes.empty


def test_touching_is_not_overlapping():
    previous = _previous([("A", box(0, 0, 20, 20))])
    current = _frame([("x", box(19.9, 0, 40, 20))])  # shares 0.5 % of the smaller site
    result = compare_surveys(current, previous, D2, lambda g: 1.0)
    assert _by_id(result) == {"x": "new"}
    assert list(result.changes["status"]) == ["disappeared"]


def test_inspection_order_puts_new_and_grown_first():
    frame = _frame([("p", box(0, 0, 10, 10)), ("n", box(20, 0, 30, 10)), ("g", box(40, 0, 50, 10))])
    frame["status"] = ["persisting", "new", "grown"]
    frame["score_max"] = [0.99, 0.6, 0.7]
    ordered = inspection_order(frame)
    assert list(ordered["site_id"]) == ["g", "n", "p"]
    assert list(ordered["rank"]) == [1, 2, 3]
