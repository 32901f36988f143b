"""The model card: everything the pipeline needs to know about a checkpoint, as plain JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CARD_SCHEMA_VERSION", "ModelCard", "halo_for"]

#: version of the card.json layout; a card of a newer version is refused, not misread.
CARD_SCHEMA_VERSION = 1


def halo_for(receptive_field: int, output_stride: int, offset: int, rf_start: int = 0) -> int:
    """Halo (pixels on each side of a tile core) that makes tiled inference exact.

    Heatmap cell ``i`` depends on input pixels ``[i * s + rf_start, i * s + rf_start + rf)`` and
    is located at input pixel ``i * s + offset``. A core pixel is linearly interpolated from its
    two nearest cells, so the tile must hold both cells' windows: at most
    ``offset + s - 1 - rf_start`` pixels before the core and ``rf_start + rf - offset + s - 1``
    after it. The halo is the larger, rounded up to a multiple of the stride so that tile
    origins stay on the heatmap lattice.

    Args:
        receptive_field: size of the input window of one heatmap cell, in pixels.
        output_stride: input pixels between neighbouring heatmap cells.
        offset: input pixel (relative to ``i * s``) a heatmap cell is located at.
        rf_start: start of the window relative to ``i * s`` (negative with padding).

    Returns:
        The halo in input pixels, a multiple of ``output_stride``.
    """
    s = output_stride
    need = max(offset + s - 1 - rf_start, rf_start + receptive_field - offset + s - 1, 0)
    return -(-need // s) * s


@dataclass(frozen=True)
class ModelCard:
    """Metadata saved beside the weights of a checkpoint.

    Attributes:
        arch: registry name of the architecture (``"patch"``, ...).
        arch_args: keyword arguments of the constructor.
        classes: class names, index 0 is the background.
        bands: names of the input bands, in order (e.g. ``["red", "green", "blue"]``).
        mean: per-band mean of the raw pixel values, used to normalize.
        std: per-band standard deviation of the raw pixel values.
        gsd_m: ground sampling distance the model was trained at, metres per pixel.
        patch_size: input patch of a patch classifier (its receptive field), pixels.
        output_stride: input pixels between heatmap cells of the dense (fully convolutional) model.
        receptive_field: size of the input window one heatmap cell depends on, pixels.
        rf_start: start of that window relative to the cell's lattice position ``i * stride``.
        offset: input pixel (relative to ``i * stride``) a heatmap cell is located at.
        halo: pixels of context on each side that tiled inference needs.
        align: tile origins must be multiples of this (0: the output stride).
        model_id: a name for people and for the ``model_id`` attribute of detections.
        training: free-form facts about the training run (data, epochs, seed, ...).
        metrics: validation metrics.
        content_hash: sha256 of the weights file, filled in by ``save_checkpoint``.
    """

    arch: str
    arch_args: dict[str, Any]
    classes: list[str]
    bands: list[str]
    mean: list[float]
    std: list[float]
    gsd_m: float
    patch_size: int
    output_stride: int
    receptive_field: int
    offset: int
    halo: int
    rf_start: int = 0
    align: int = 0
    model_id: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""

    def to_json(self) -> str:
        doc = {"schema_version": CARD_SCHEMA_VERSION, **dataclasses.asdict(self)}
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or version > CARD_SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version!r} is newer than this wastewatch reads "
                f"({CARD_SCHEMA_VERSION}): upgrade wastewatch"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        } - set(data)
        if missing:
            raise KeyError(", ".join(sorted(missing)))
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)
