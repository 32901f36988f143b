"""Change detection between two surveys: sites matched by overlap, statuses, carried ids.

The rule, in full (also for splits and merges):

1. A current site and a previous site *match* when their intersection covers at least
   ``min_overlap`` (10 %) of the smaller of the two. Ids and centroids play no part: a growing
   site moves its centroid, and an id is a geohash of a point.
2. Matches form connected groups (one previous site split into two current ones, two previous
   sites merged into one, or both). Within a group, statuses compare total areas: ``grown``
   when the current total is at least ``1 + threshold`` times the previous total, ``shrunk``
   when at most ``1 - threshold`` times, else ``persisting``; every current site of the group
   gets that status.
3. Ids are carried greedily by overlap area, largest first: a current site takes the id (and
   ``first_seen``) of the previous site it overlaps most, unless that id is already taken in the
   group. So in a split the largest piece keeps the id and the other pieces get ids of their
   own (with the group's ``first_seen``); in a merge the merged site keeps the id of the
   previous site it overlaps most, and the other previous ids end (status ``merged`` in the
   registry, not in ``changes``).
4. A current site with no match is ``new``. A previous site with no match is ``disappeared``
   when this survey had valid imagery over at least half of it, else ``not_observed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["ChangeResult", "compare_surveys", "inspection_order"]

#: statuses of current sites, in inspection priority.
CURRENT_STATUSES = ("new", "grown", "persisting", "shrunk")
#: statuses of previous sites not found again.
GONE_STATUSES = ("disappeared", "not_observed")


@dataclass
class ChangeResult:
    """What comparing two surveys gives.

    Attributes:
        current: the current sites with ``status``, carried ``site_id``, ``first_seen`` and
            ``previous_area_m2`` (None for new sites).
        changes: previous sites not found again, with ``status`` ``disappeared`` or
            ``not_observed``.
        merged: ids of previous sites merged into a current site, mapped to that site's id.
    """

    current: gpd.GeoDataFrame
    changes: gpd.GeoDataFrame
    merged: dict[str, str]


def _pairs(
    current: gpd.GeoDataFrame, previous: gpd.GeoDataFrame, min_overlap: float
) -> pd.DataFrame:
    """Matching (current, previous) row pairs with their overlap area."""
    if current.empty or previous.empty:
        return pd.DataFrame({"c": [], "p": [], "overlap": []})
    c_idx, p_idx = previous.sindex.query(current.geometry.values, predicate="intersects")
    cg = current.geometry.values[c_idx]
    pg = previous.geometry.values[p_idx]
    overlap = shapely.area(shapely.intersection(cg, pg))
    smaller = np.minimum(shapely.area(cg), shapely.area(pg))
    keep = overlap >= min_overlap * smaller
    return pd.DataFrame({"c": c_idx[keep], "p": p_idx[keep], "overlap": overlap[keep]})


def _groups(n_current: int, pairs: pd.DataFrame) -> dict[int, int]:
    """Connected groups of current rows (keys) linked through shared previous sites."""
    parent = list(range(n_current))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _, rows in pairs.groupby("p"):
        cs = rows["c"].astype(int).tolist()
        for other in cs[1:]:
            a, b = find(cs[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {i: find(i) for i in range(n_current)}


def compare_surveys(
    current: gpd.GeoDataFrame,
    previous: gpd.GeoDataFrame,
    date: dt.date,
    observed: Callable[[shapely.Geometry], float],
    *,
    threshold: float = 0.25,
    min_overlap: float = 0.1,
) -> ChangeResult:
    """Match this survey's sites with the previous survey's (module docstring: the rule).

    Args:
        current: this survey's sites (``site_id``, ``area_m2``, geometry), projected CRS.
        previous: the previous survey's open sites, same CRS, with ``site_id``, ``area_m2``
            and ``first_seen``.
        date: this survey's date (``first_seen`` of new sites).
        observed: share (0..1) of a geometry over which this survey had valid imagery.
        threshold: relative area change from which a site is grown or shrunk.
        min_overlap: share of the smaller site two sites must share to match.
    """
    current = current.reset_index(drop=True).copy()
    previous = previous.reset_index(drop=True)
    pairs = _pairs(current, previous, min_overlap)
    groups = _groups(len(current), pairs)
    status = ["new"] * len(current)
    first_seen: list[dt.date] = [date] * len(current)
    previous_area: list[float | None] = [None] * len(current)
    ids = list(current["site_id"].astype(str))
    matched_c = set(pairs["c"].astype(int))
    matched_p = set(pairs["p"].astype(int))
    # group totals: current areas of the group, previous areas of every site linked to it
    by_group: dict[int, tuple[set[int], set[int]]] = {}
    for c in matched_c:
        g = groups[c]
        cs, ps = by_group.setdefault(g, (set(), set()))
        cs.add(c)
        ps.update(int(p) for p in pairs.loc[pairs["c"] == c, "p"])
    for cs, ps in by_group.values():
        before = float(previous["area_m2"].iloc[sorted(ps)].sum())
        after = float(current["area_m2"].iloc[sorted(cs)].sum())
        ratio = after / before if before > 0 else np.inf
        s = (
            "grown"
            if ratio >= 1 + threshold
            else "shrunk"
            if ratio <= 1 - threshold
            else "persisting"
        )
        seen = min(_as_date(previous["first_seen"].iloc[p]) for p in ps)
        for c in cs:
            status[c], first_seen[c], previous_area[c] = s, seen, round(before, 1)
    taken_c: set[int] = set()
    taken_p: set[int] = set()
    merged: dict[str, str] = {}
    order = pairs.sort_values(["overlap", "c", "p"], ascending=[False, True, True])
    for c, p in zip(order["c"].astype(int), order["p"].astype(int), strict=True):
        if c in taken_c or p in taken_p:
            continue
        taken_c.add(c)
        taken_p.add(p)
        ids[c] = str(previous["site_id"].iloc[p])
        first_seen[c] = _as_date(previous["first_seen"].iloc[p])
    for c, p in zip(order["c"].astype(int), order["p"].astype(int), strict=True):
        if p not in taken_p:  # merged into the site that took another id
            taken_p.add(p)
            merged[str(previous["site_id"].iloc[p])] = ids[c]
    ids = _unique(ids, fixed=taken_c)
    current["site_id"] = ids
    current["status"] = status
    current["first_seen"] = first_seen
    current["previous_area_m2"] = previous_area
    gone = previous.iloc[sorted(set(range(len(previous))) - matched_p)].copy()
    gone["status"] = [
        "disappeared" if observed(g) >= 0.5 else "not_observed" for g in gone.geometry
    ]
    return ChangeResult(current, gone.reset_index(drop=True), merged)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _unique(ids: list[str], fixed: set[int]) -> list[str]:
    """Carried ids stay; a fresh id that collides with another gets a suffix."""
    seen = {ids[i] for i in fixed}
    out = list(ids)
    for i, sid in enumerate(ids):
        if i in fixed:
            continue
        candidate, n = sid, 1
        while candidate in seen:
            n += 1
            candidate = f"{sid}-{n}"
        seen.add(candidate)
        out[i] = candidate
    return out


def inspection_order(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Sites in inspection order, ``rank`` renumbered: new and grown sites first, then by
    ``score_max``, ``score_mean``, area and id (fully determined by the sites)."""
    priority = {"new": 0, "grown": 0}
    key = pd.DataFrame(
        {
            "p": [priority.get(s, 1) for s in frame["status"]],
            "s": -frame["score_max"].astype(float),
            "m": -frame["score_mean"].astype(float),
            "a": -frame["area_m2"].astype(float),
            "i": frame["site_id"].astype(str),
        }
    )
    order = key.sort_values(["p", "s", "m", "a", "i"], kind="stable").index
    out = frame.loc[order].reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out
