"""Checkpoints as data: safetensors weights plus a JSON model card, never pickle."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .card import ModelCard
from .errors import CheckpointError
from .registry import build

__all__ = [
    "CARD_FILE",
    "WEIGHTS_FILE",
    "file_sha256",
    "load_checkpoint",
    "load_training_state",
    "read_card",
    "save_checkpoint",
    "save_training_state",
]

WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "card.json"
_HINT = "a wastewatch checkpoint is a folder holding card.json and weights.safetensors"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], card: ModelCard | None = None
) -> ModelCard:
    """Write ``model``'s weights and its card into the folder ``path``.

    Args:
        model: the network (any registered architecture).
        path: a folder; created if missing, files in it replaced.
        card: the model card; ``content_hash`` (and ``model_id`` when empty) are filled in here.
            Without one, :func:`models.registry.default_card` describes the architecture and
            its geometry and leaves bands, normalization and GSD generic.

    Returns:
        The card as written, with its content hash.
    """
    if card is None:
        from .registry import default_card

        card = default_card(model)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = folder / WEIGHTS_FILE
    tmp = folder / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt", "arch": card.arch})
    os.replace(tmp, weights)
    digest = file_sha256(weights)
    card = card.replace(content_hash=digest, model_id=card.model_id or f"{card.arch}-{digest[:12]}")
    tmp_card = folder / (CARD_FILE + ".tmp")
    tmp_card.write_text(card.to_json() + "\n")
    os.replace(tmp_card, folder / CARD_FILE)
    return card


def read_card(path: str | os.PathLike[str]) -> ModelCard:
    """Read and check the card of a checkpoint folder without loading its weights.

    Raises:
        CheckpointError: the path is not a checkpoint folder or its card is unreadable.
    """
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"{folder}: no such model checkpoint; {_HINT}")
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder} is not a wastewatch checkpoint: {_HINT} (train one with `wastewatch train`)"
        )
    card_path = folder / CARD_FILE
    if not card_path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{folder} is not a wastewatch checkpoint: {_HINT}")
    try:
        return ModelCard.from_dict(json.loads(card_path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{card_path} is not a valid model card ({exc}): retrain or restore the checkpoint"
        ) from None


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelCard]:
    """Load a checkpoint folder written by :func:`save_checkpoint`.

    Nothing in the files is executed: the weights are safetensors, the card is JSON. Every weight
    the architecture expects must be present, and no other.

    Returns:
        ``(model, card)`` with the model in eval mode.

    Raises:
        CheckpointError: not a checkpoint, a hash mismatch, or weights that do not fit the card.
    """
    folder = Path(path)
    card = read_card(folder)
    weights = folder / WEIGHTS_FILE
    if card.content_hash and file_sha256(weights) != card.content_hash:
        raise CheckpointError(
            f"{weights} does not match the content hash of its card: the "
            "checkpoint is corrupt or was edited; restore it"
        )
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is not a safetensors file ({exc}): {_HINT}") from None
    model = build(card.arch, **card.arch_args)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{weights} does not fit architecture {card.arch!r}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"{weights} does not fit architecture {card.arch!r}: {first}"
        ) from None
    model.to(map_location).eval()
    return model, card


TRAIN_STATE_TENSORS = "train_state.safetensors"
TRAIN_STATE_JSON = "train_state.json"


def _flatten(value: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """A JSON-able structure with every tensor replaced by a reference into ``tensors``."""
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {"__dict__": [[k, _flatten(v, tensors, f"{prefix}.{k}")] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return {
            "__list__": [_flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)],
            "tuple": isinstance(value, tuple),
        }
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a training state")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__dict__" in value:
            return {k: _unflatten(v, tensors) for k, v in value["__dict__"]}
        if "__list__" in value:
            items = [_unflatten(v, tensors) for v in value["__list__"]]
            return tuple(items) if value.get("tuple") else items
    return value


def save_training_state(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a resumable training state (optimizer, scheduler, random generators, history)
    into the folder ``path`` as safetensors plus JSON: data only, like the checkpoints."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    doc = _flatten(state, tensors, "state")
    save_file(tensors, str(folder / (TRAIN_STATE_TENSORS + ".tmp")))
    (folder / (TRAIN_STATE_JSON + ".tmp")).write_text(json.dumps(doc))
    os.replace(folder / (TRAIN_STATE_TENSORS + ".tmp"), folder / TRAIN_STATE_TENSORS)
    os.replace(folder / (TRAIN_STATE_JSON + ".tmp"), folder / TRAIN_STATE_JSON)


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state written by :func:`save_training_state`.

    Raises:
        CheckpointError: the folder holds no readable training state.
    """
    folder = Path(path)
    try:
        tensors = load_file(str(folder / TRAIN_STATE_TENSORS))
        doc = json.loads((folder / TRAIN_STATE_JSON).read_text())
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(
            f"{folder} holds no resumable training state ({exc}): train from "
            "scratch without --resume"
        ) from None
    return _unflatten(doc, tensors)  # type: ignore[no-any-return]
