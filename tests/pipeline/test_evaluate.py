from __future__ import annotations

from shapely.geometry import box

from pipeline.evaluation import match_polygons


def test_matching_is_one_to_one_and_thresholded():
    truth = [box(0, 0, 10, 10), box(100, 0, 110, 10), box(200, 0, 210, 10)]
    pred = [
        box(0, 0, 10, 8),  # IoU 0.8 with truth 0
        box(1, 0, 10, 10),  # IoU 0.9 with truth 0: wins it
        box(100, 0, 103, 10),  # IoU 0.3 with truth 1: a match at the threshold
        box(200, 0, 202, 10),  # IoU 0.2: no match
    ]
    matches = match_polygons(pred, truth, 0.3)
    assert [(i, j) for i, j, _ in matches] == [(1, 0), (2, 1)]
    assert abs(matches[0][2] - 0.9) < 1e-9
