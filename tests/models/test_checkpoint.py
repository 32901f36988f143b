from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from models import (
    CheckpointError,
    ModelCard,
    PatchClassifier,
    dense_geometry,
    load_checkpoint,
    save_checkpoint,
)
from tests.helpers import SMALL_ARCH_ARGS, rgb_card


def _card(model: PatchClassifier) -> ModelCard:
    return ModelCard(
        arch="patch",
        arch_args={"patch_size": 32, "channels": [8, 16]},
        classes=["background", "landfill"],
        bands=["red", "green", "blue"],
        mean=[100.0] * 3,
        std=[40.0] * 3,
        gsd_m=0.5,
        patch_size=32,
        **dense_geometry(model),
    )


def test_roundtrip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = PatchClassifier(patch_size=32, channels=(8, 16)).eval()
    card = save_checkpoint(model, tmp_path / "m", _card(model))
    assert len(card.content_hash) == 64 and card.model_id.startswith("patch-")
    loaded, card2 = load_checkpoint(tmp_path / "m")
    assert card2 == card
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert json.loads((tmp_path / "m" / "card.json").read_text())["halo"] == card.halo


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "executed"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError, match="not a wastewatch checkpoint"):
        load_checkpoint(evil)
    # a folder posing as a checkpoint with a pickle in place of the weights
    folder = tmp_path / "fake"
    folder.mkdir()
    model = PatchClassifier(patch_size=32, channels=(8, 16))
    (folder / "card.json").write_text(_card(model).to_json())
    (folder / "weights.safetensors").write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(CheckpointError):
        load_checkpoint(folder)
    assert not marker.exists()


def test_missing_or_unexpected_weights_are_refused(tmp_path):
    model = PatchClassifier(patch_size=32, channels=(8, 16))
    save_checkpoint(model, tmp_path / "m", _card(model))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    del state["classifier.4.bias"]
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "m" / "weights.safetensors"))
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    card["content_hash"] = ""
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=r"missing \['classifier.4.bias'\].*extra.weight"):
        load_checkpoint(tmp_path / "m")


def test_edited_weights_fail_the_hash(tmp_path):
    model = PatchClassifier(patch_size=32, channels=(8, 16))
    save_checkpoint(model, tmp_path / "m", _card(model))
    with open(tmp_path / "m" / "weights.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(CheckpointError, match="content hash"):
        load_checkpoint(tmp_path / "m")


def test_every_registry_model_roundtrips(tmp_path):
    from models import ARCHITECTURES, build

    assert set(SMALL_ARCH_ARGS) == set(ARCHITECTURES)
    for arch, args in SMALL_ARCH_ARGS.items():
        torch.manual_seed(0)
        model = build(arch, **args).eval()
        card = rgb_card(arch, args, model)
        assert card.halo % card.align == 0 and card.halo >= card.offset - card.rf_start
        save_checkpoint(model, tmp_path / arch, card)
        loaded, card2 = load_checkpoint(tmp_path / arch)
        assert type(loaded) is type(model) and card2.arch == arch
        size = args.get("patch_size", 64)
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_save_without_a_card(tmp_path):
    from models import ResNetClassifier, UNet

    for model in (ResNetClassifier(patch_size=64, width=8, layers=(1, 1)), UNet(base=8, depth=2)):
        card = save_checkpoint(model.eval(), tmp_path / type(model).__name__)
        assert card.gsd_m == 0.0 and card.bands == ["red", "green", "blue"]
        assert card.halo > 0 and card.halo % card.align == 0
        loaded, card2 = load_checkpoint(tmp_path / type(model).__name__)
        assert type(loaded) is type(model) and card2 == card
