"""The tile store and the staging folder keep what a killed run finished, and nothing else:
torn ledger lines and emptied tile files are not trusted, and one run at a time writes an
output."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

from pipeline.errors import OutputExistsError
from pipeline.geo import GeoBox
from pipeline.geo.mosaic import TileStore
from pipeline.job.publish import staging

GRID = GeoBox(64, 64, Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0), CRS.from_epsg(32632))


def _tile(value: int) -> np.ndarray:
    return np.full((2, 32, 32), value, np.uint8)


def test_a_reopened_store_trusts_only_whole_tiles(tmp_path):
    store = TileStore(tmp_path, GRID, 255)
    store.put("a", Window(0, 0, 32, 32), _tile(1))
    store.put("b", Window(32, 0, 32, 32), _tile(2))
    store.put("empty", Window(0, 32, 32, 32), _tile(255))  # all nodata: no file
    store.close()
    store.path("b").write_bytes(b"")  # emptied by a crash
    with open(tmp_path / "ledger.txt", "a") as f:
        f.write("c 32 32 32")  # torn by a kill: no newline
    again = TileStore(tmp_path, GRID, 255)
    assert again.done == {"a", "empty"}
    assert again.stored == {"a"}
    again.put("c", Window(32, 32, 32, 32), _tile(3))
    again.close()
    assert TileStore(tmp_path, GRID, 255).done == {"a", "empty", "c"}


def test_one_run_at_a_time_writes_an_output(tmp_path):
    out = tmp_path / "out"
    busy = pytest.raises(OutputExistsError, match="another run is writing")
    with staging(out, key="k1"), busy, staging(out, key="k1", resume=True):
        pass
    assert out.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_resumed_run_keeps_other_runs_tiles_until_it_succeeds(tmp_path):
    out = tmp_path / "out"
    other = tmp_path / ".out.partial-other" / "work"
    other.mkdir(parents=True)
    (other / "ledger.txt").write_text("t 0 0 1 1 0\n")
    with pytest.raises(RuntimeError), staging(out, key="mine", resume=True):
        raise RuntimeError("killed")
    assert other.exists()  # a failed run removes nobody's tiles
    with staging(out, key="mine", resume=True):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_tags_of_a_tile_this_process_wrote_are_those_of_its_file(tmp_path):
    """A tile's tags are kept when it is written (a job's outputs read every tile's tags):
    what they give is what the file holds; a file changed since is read again."""
    import rasterio

    import pipeline.geo.mosaic as mosaic

    store = TileStore(tmp_path, GRID, 255)
    store.put("a", Window(0, 0, 32, 32), _tile(1), {"PIECES": "[1]", "PICTURE": "k:0"})
    store.put("b", Window(32, 0, 32, 32), _tile(2), {"PIECES": "[2]"})
    store.close()
    with rasterio.open(store.path("a")) as src:
        on_disk = dict(src.tags())
    key = str(store.path("a"))
    assert key in mosaic._WRITTEN
    real_open = mosaic.rasterio.open
    mosaic.rasterio.open = None  # type: ignore[assignment]  # kept: no file opened
    try:
        assert mosaic.tile_tags(tmp_path, "a") == on_disk
    finally:
        mosaic.rasterio.open = real_open
    assert key not in mosaic._WRITTEN  # given once
    assert mosaic.tile_tags(tmp_path, "a") == on_disk  # from the file
    # another writer replaces b: its own tags, not the ones kept
    with rasterio.open(store.path("b"), "r+") as dst:
        dst.update_tags(PIECES="[changed]")
    assert mosaic.tile_tags(tmp_path, "b")["PIECES"] == "[changed]"
    assert mosaic.tile_tags(tmp_path, "empty") is None


def test_tags_kept_for_tiles_never_read_are_bounded(tmp_path, monkeypatch):
    import pipeline.geo.mosaic as mosaic

    monkeypatch.setattr(mosaic, "_WRITTEN", {})
    monkeypatch.setattr(mosaic, "_WRITTEN_MAX", 3)
    store = TileStore(tmp_path, GRID, 255)
    for i in range(5):
        store.put(f"t{i}", Window(0, 0, 32, 32), _tile(i), {"PIECES": f"[{i}]"})
    store.close()
    assert [k.rsplit("/", 1)[-1] for k in mosaic._WRITTEN] == ["t2.tif", "t3.tif", "t4.tif"]
    assert mosaic.tile_tags(tmp_path, "t0")["PIECES"] == "[0]"  # read from its file


def test_a_tile_given_as_layers_is_the_tile_given_as_one_array(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.integers(0, 255, (2, 32, 32), dtype=np.uint8)
    mask = rng.integers(0, 3, (1, 32, 32), dtype=np.uint8)
    one, layered = TileStore(tmp_path / "one", GRID, 255), TileStore(tmp_path / "layers", GRID, 255)
    for store, bands in ((one, np.concatenate([probs, mask])), (layered, [probs, mask])):
        store.put("a", Window(0, 0, 32, 32), bands, {"K": "v"})
        # nodata everywhere but one value of the last layer: still a tile with data
        last = np.full((1, 32, 32), 255, np.uint8)
        last[0, 31, 31] = 0
        nodata = np.full((2, 32, 32), 255, np.uint8)
        store.put("b", Window(32, 0, 32, 32), [nodata, last])
        store.put("c", Window(0, 32, 32, 32), [nodata, np.full((1, 32, 32), 255, np.uint8)])
        store.close()
    assert one.stored == layered.stored == {"a", "b"}
    assert one.path("a").read_bytes() == layered.path("a").read_bytes()
    with rasterio.open(layered.path("b")) as src:
        assert src.count == 3 and src.read(3)[31, 31] == 0 and (src.read(1) == 255).all()
