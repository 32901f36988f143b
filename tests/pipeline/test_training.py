"""Training from labelled scenes: determinism, resume, sparse labels, segmenters, Ray Train."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import rasterio
import torch
from safetensors.torch import load_file

from models import TrainConfig, load_training_state, save_training_state
from pipeline.errors import InputError
from pipeline.training.datasets import load_labelled_scenes
from pipeline.training.train import train_model
from tests.helpers import assert_bad_input, wastewatch


def _weights(folder):
    return load_file(str(folder / "weights.safetensors"))


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


SMALL = {"patch_size": 32, "channels": [8, 16, 16]}


def test_same_seed_same_weights_and_resume_is_seamless(tmp_path, train_scene, monkeypatch):
    import models

    kw = dict(arch_args=SMALL, samples=300)
    cfg = TrainConfig(epochs=3, seed=7, batch_size=32)
    data = ([train_scene.scene], [train_scene.truth])
    train_model("patch", *data, tmp_path / "a", config=cfg, **kw)
    train_model("patch", *data, tmp_path / "b", config=cfg, **kw)
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert load_training_state(tmp_path / "a" / "train-state")["epoch"] == 2  # the last, 0-based
    other = TrainConfig(epochs=3, seed=8, batch_size=32)
    train_model("patch", *data, tmp_path / "c", config=other, **kw)
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))

    # interrupt after the second epoch, then resume: the weights of the uninterrupted run
    real_fit = models.fit

    def stop_after_two(model, data, config, on_epoch, **k):
        def cb(epoch, metrics, st):
            on_epoch(epoch, metrics, st)
            if epoch == 1:
                raise KeyboardInterrupt

        return real_fit(model, data, config, on_epoch=cb, **k)

    monkeypatch.setattr(models, "fit", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        train_model("patch", *data, tmp_path / "e", config=cfg, **kw)
    monkeypatch.setattr(models, "fit", real_fit)
    card = json.loads((tmp_path / "e" / "card.json").read_text())
    assert card["training"]["epochs_done"] == 2
    train_model("patch", *data, tmp_path / "e", config=cfg, resume=True, **kw)
    assert _same(_weights(tmp_path / "e"), _weights(tmp_path / "a"))


def test_training_state_roundtrip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {
        "epoch": 4,
        "optimizer": opt.state_dict(),
        "rng": torch.get_rng_state(),
        "history": [{"loss": 0.5}],
        "pair": (1, "a"),
    }
    save_training_state(state, tmp_path)
    back = load_training_state(tmp_path)
    assert back["epoch"] == 4 and back["history"] == [{"loss": 0.5}] and back["pair"] == (1, "a")
    assert torch.equal(back["rng"], state["rng"])
    opt2 = torch.optim.AdamW(model.parameters())
    opt2.load_state_dict(back["optimizer"])
    assert torch.equal(
        opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def _points(truth_path, scene_path, out, background_points=400, seed=0):
    """One point per site (a point inside it) plus random background points."""
    import geopandas as gpd
    from shapely.geometry import Point

    truth = gpd.read_file(truth_path)
    with rasterio.open(scene_path) as src:
        crs, b = src.crs, src.bounds
    truth = truth.to_crs(crs)
    rng = np.random.default_rng(seed)
    pts, cls = [], []
    for g in truth.geometry:
        pts.append(g.representative_point())
        cls.append("landfill")
    union = truth.union_all().buffer(15)
    while len(pts) < len(truth) + background_points:
        p = Point(rng.uniform(b.left + 30, b.right - 30), rng.uniform(b.bottom + 30, b.top - 30))
        if not union.contains(p):
            pts.append(p)
            cls.append("background")
    gpd.GeoDataFrame({"class": cls}, geometry=pts, crs=crs).to_crs(4326).to_file(out)
    return out


def test_point_labels_beat_always_background(tmp_path, train_scene, survey_scene):
    from pipeline.evaluation import evaluate_detections
    from pipeline.job import JobRequest, run_job

    labels = _points(train_scene.truth, train_scene.scene, tmp_path / "points.geojson")
    scenes = load_labelled_scenes([train_scene.scene], [labels], ["background", "landfill"])
    assert scenes[0].sparse and (scenes[0].labels == 255).mean() > 0.99
    train_model(
        "patch",
        [train_scene.scene],
        [labels],
        tmp_path / "m",
        arch_args={"patch_size": 32, "channels": [16, 32, 64]},
        config=TrainConfig(epochs=8, seed=0, batch_size=32),
        samples=2000,
    )
    run_job(
        JobRequest(
            aoi=str(survey_scene.aoi),
            scenes=(str(survey_scene.scene),),
            model=str(tmp_path / "m"),
            out=str(tmp_path / "out"),
            executor="local",
            tile_size=256,
        )
    )
    points_f1 = evaluate_detections(tmp_path / "out" / "detections.geojson", survey_scene.truth)[
        "f1"
    ]
    empty = tmp_path / "none.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    assert evaluate_detections(empty, survey_scene.truth)["f1"] == 0.0  # always background
    assert points_f1 >= 0.5, points_f1


def test_unet_learns_the_sites(tmp_path, train_scene):
    card = train_model(
        "unet",
        [train_scene.scene],
        [train_scene.truth],
        tmp_path / "u",
        arch_args={"base": 8, "depth": 3},
        config=TrainConfig(epochs=3, seed=0, batch_size=4, lr=3e-3, border_w0=5.0, pixel_mask=0.1),
        samples=60,
        crop_size=128,
    )
    assert card.arch == "unet" and card.output_stride == 1 and card.align == 8
    assert card.metrics["iou"] > 0.3, card.metrics
    assert 0 <= card.metrics["object_f1"] <= 1  # object-level validation metrics in the card


@pytest.mark.slow
def test_two_ray_train_workers_match_one(tmp_path, train_scene, ray_local):
    cfg = TrainConfig(epochs=3, seed=0, batch_size=32)
    kw = dict(arch_args={"patch_size": 32, "channels": [8, 16, 32]}, samples=600, config=cfg)
    one = train_model("patch", [train_scene.scene], [train_scene.truth], tmp_path / "one", **kw)
    two = train_model(
        "patch", [train_scene.scene], [train_scene.truth], tmp_path / "two", workers=2, **kw
    )
    assert two.training["workers"] == 2
    assert two.metrics["accuracy"] > 0.85 and one.metrics["accuracy"] > 0.85
    assert abs(two.metrics["accuracy"] - one.metrics["accuracy"]) < 0.08


def _cli(*args: str) -> subprocess.CompletedProcess:
    return wastewatch("train", *args)


def test_bad_training_input(tmp_path, train_scene, survey_scene):
    scene, truth = str(train_scene.scene), str(train_scene.truth)
    # labels that do not overlap the scene
    far = tmp_path / "far.geojson"
    far.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"class": "landfill"},
                        "geometry": {"type": "Point", "coordinates": [12.0, 42.0]},
                    }
                ],
            }
        )
    )
    assert_bad_input(
        _cli("--scenes", scene, "--labels", str(far), "--out", str(tmp_path / "m")),
        "do not overlap",
    )
    # a class attribute missing
    nocls = tmp_path / "nocls.geojson"
    doc = json.loads(train_scene.truth.read_text())
    for f in doc["features"]:
        del f["properties"]["class"]
    nocls.write_text(json.dumps(doc))
    assert_bad_input(
        _cli("--scenes", scene, "--labels", str(nocls), "--out", str(tmp_path / "m")), "'class'"
    )
    # an empty label file
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    assert_bad_input(
        _cli("--scenes", scene, "--labels", str(empty), "--out", str(tmp_path / "m")), "no geometry"
    )
    # mismatched band counts between scenes
    four = tmp_path / "four.tif"
    with rasterio.open(scene) as src:
        profile = src.profile | {"count": 4, "photometric": "MINISBLACK"}
        data = src.read()
    with rasterio.open(four, "w", **profile) as dst:
        dst.write(np.concatenate([data, data[:1]]))
    assert_bad_input(
        _cli(
            "--scenes",
            scene,
            "--scenes",
            str(four),
            "--labels",
            truth,
            "--labels",
            truth,
            "--out",
            str(tmp_path / "m"),
        ),
        "different band counts",
    )
    assert not (tmp_path / "m").exists()
    with pytest.raises(InputError):
        train_model("patch", [scene], [truth, truth], tmp_path / "x")


def test_resnet_and_fcn_train_and_predict(tmp_path, train_scene, survey_scene):
    from pipeline.job import JobRequest, run_job

    for arch, args, samples in (
        ("resnet", {"patch_size": 64, "width": 8, "layers": [1, 1]}, 200),
        ("fcn8s", {"widths": [8, 8, 16, 16, 16], "fc_width": 16}, 16),
    ):
        card = train_model(
            arch,
            [train_scene.scene],
            [train_scene.truth],
            tmp_path / arch,
            arch_args=args,
            config=TrainConfig(epochs=1, seed=0, batch_size=8),
            samples=samples,
            crop_size=128,
        )
        assert card.arch == arch and card.halo % card.align == 0
        out = tmp_path / f"out-{arch}"
        run_job(
            JobRequest(
                aoi=str(survey_scene.aoi),
                scenes=(str(survey_scene.scene),),
                model=str(tmp_path / arch),
                out=str(out),
                executor="local",
                tile_size=256,
            )
        )
        with rasterio.open(out / "probabilities.tif") as src:
            p = src.read(1)
        assert (p != 255).all()  # a square synthetic scene: every pixel valid
        if arch == "resnet":  # one epoch of FCN-8s may still be a constant (skips start at zero)
            assert p.std() > 0


def test_labels_in_another_crs_are_reprojected(tmp_path, train_scene):
    import geopandas as gpd

    wgs = gpd.read_file(train_scene.truth)
    laea = tmp_path / "truth-3035.gpkg"
    wgs.to_crs(3035).to_file(laea)
    a = load_labelled_scenes([train_scene.scene], [train_scene.truth], ["background", "landfill"])
    b = load_labelled_scenes([train_scene.scene], [laea], ["background", "landfill"])
    fg_a, fg_b = a[0].labels == 1, b[0].labels == 1
    assert fg_a.sum() > 1000
    assert (fg_a != fg_b).sum() / fg_a.sum() < 0.01  # the same pixels, to rounding at edges


def test_staged_fcn_training(tmp_path, train_scene, monkeypatch):
    import models

    starts = []
    real_fit = models.fit

    def spy(model, data, config, **k):
        starts.append(
            (type(model).__name__, {n: p.detach().clone() for n, p in model.state_dict().items()})
        )
        result = real_fit(model, data, config, **k)
        starts.append(("end", {n: p.detach().clone() for n, p in model.state_dict().items()}))
        return result

    monkeypatch.setattr(models, "fit", spy)
    card = train_model(
        "fcn8s",
        [train_scene.scene],
        [train_scene.truth],
        tmp_path / "f",
        arch_args={"widths": [8, 8, 8, 16, 16], "fc_width": 16},
        staged=True,
        config=TrainConfig(epochs=3, seed=0, batch_size=4),
        samples=12,
        crop_size=128,
    )
    assert card.arch == "fcn8s" and card.training["stages"] == ["fcn32s", "fcn16s", "fcn8s"]
    names = [n for n, _ in starts if n != "end"]
    assert names == ["FCN32s", "FCN16s", "FCN8s"]
    # each finer net starts from the coarser one's trained backbone
    end_32, start_16 = starts[1][1], starts[2][1]
    assert torch.equal(end_32["stage1.0.0.weight"], start_16["stage1.0.0.weight"])
    assert torch.equal(
        start_16["score_pool4.weight"], torch.zeros_like(start_16["score_pool4.weight"])
    )
    with pytest.raises(InputError, match="--staged"):
        train_model("unet", [train_scene.scene], [train_scene.truth], tmp_path / "u", staged=True)
