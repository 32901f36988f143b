"""GPU checks (skipped without CUDA): the per-tile path on a GPU gives the CPU's answer."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.geo import open_scenes
from pipeline.job.predict import TilePredictor, read_tile
from pipeline.job.tiling import plan_tiles


@pytest.mark.gpu
def test_gpu_tiles_equal_cpu_tiles(model_dir, survey_scene):
    cpu = TilePredictor(model_dir, device="cpu")
    gpu = TilePredictor(model_dir, device="cuda")
    from models import RowStreamed

    # streamed on CPU (cache-sized stripes), whole on the GPU (one launch per layer)
    assert isinstance(cpu.model, RowStreamed) and not isinstance(gpu.model, RowStreamed)
    scenes = open_scenes([str(survey_scene.scene)], 3)
    card = cpu.card
    for tile in plan_tiles(survey_scene.grid, 256, card.halo, card.align)[:4]:
        item = read_tile(tile, scenes, survey_scene.grid, 3, None)
        a, b = cpu.predict(item), gpu.predict(item)
        assert np.abs(a.probabilities.astype(int) - b.probabilities.astype(int)).max() <= 1
        assert (a.mask != b.mask).mean() < 1e-3
