"""Per-tile work: read a tile, run the dense network, crop the halo. Plain functions, no Ray."""

from __future__ import annotations

import os
import threading

import numpy as np
import torch

from models import (
    FullyConvolutional,
    ModelCard,
    ModelConfigError,
    RowStreamed,
    dense_grad_cam,
    load_checkpoint,
    row_streamed,
    to_dense,
)

from ..geo import NODATA, SCALE
from .tiledata import GroupInput, TileInput, TileResult, read_tile, saliency_class

__all__ = [
    "TileInput",
    "TilePredictor",
    "TileResult",
    "read_tile",
    "saliency_class",
    "upsample_heatmap",
]


#: held while a model is loaded and made dense (jobs of a survey load theirs in threads).
_BUILD = threading.Lock()


def upsample_heatmap(
    heat: torch.Tensor, stride: int, offset: int, rows: range, cols: range
) -> torch.Tensor:
    """Linear interpolation of a heatmap at input pixels.

    Heatmap cell ``i`` is located at input pixel ``i * stride + offset``; pixel ``r`` takes
    ``(1 - w) * heat[i0] + w * heat[i0 + 1]`` with ``i0 = floor((r - offset) / stride)``.
    Pixels beyond the outermost cells take the nearest cell.

    Args:
        heat: (K, Hh, Wh) values.
        stride: input pixels between cells.
        offset: input pixel of cell 0.
        rows: input pixel rows wanted.
        cols: input pixel columns wanted.

    Returns:
        (K, len(rows), len(cols)).
    """

    def cells(pixels: range, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int]:
        """Each pixel's cells ``i0``, ``i1`` and weight ``w`` of ``i1``, and the range of
        cells ``[lo, hi)`` they fall in."""
        u = (
            torch.arange(pixels.start, pixels.stop, device=heat.device, dtype=torch.float64)
            - offset
        ) / stride
        i0 = torch.floor(u).clamp(0, n - 1)
        w = (u - i0).clamp(0, 1).to(heat.dtype)
        i0 = i0.long()
        i1 = (i0 + 1).clamp(max=n - 1)
        return i0, i1, w, int(i0.min()), int(i1.max()) + 1

    def weights(i0: torch.Tensor, i1: torch.Tensor, w: torch.Tensor, n: int) -> torch.Tensor:
        """(pixels, n): each row holds the two weights of one pixel (zeros elsewhere)."""
        at = torch.arange(len(w), device=heat.device)
        m = torch.zeros((len(w), n), dtype=heat.dtype, device=heat.device)
        m.index_put_((at, i0), 1 - w, accumulate=True)
        m.index_put_((at, i1), w, accumulate=True)
        return m

    # two small matrix products (rows, then columns) over the cells the pixels fall in (a
    # tile's part of its group's heatmap): a few ms for a 1024 px tile, where gathering the
    # four neighbours of every pixel takes a hundred
    if not len(rows) or not len(cols):
        return heat.new_zeros((heat.shape[0], len(rows), len(cols)))
    r0, r1, rw, top, bottom = cells(rows, heat.shape[1])
    c0, c1, cw, left, right = cells(cols, heat.shape[2])
    part = heat[:, top:bottom, left:right]
    r = weights(r0 - top, r1 - top, rw, bottom - top)
    c = weights(c0 - left, c1 - left, cw, right - left)
    return torch.matmul(torch.matmul(r, part), c.T)


class TilePredictor:
    """Holds a loaded model and turns :class:`TileInput` into :class:`TileResult`.

    Args:
        checkpoint: checkpoint folder.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (a GPU when there is one).
        threads: torch CPU threads (default: all cores of this process's affinity).
        threshold: minimum probability for a foreground class to be written to the mask.
        stride: patch classifiers: the output stride to predict at (a divisor of the network's,
            through ``models.densify``); None: the network's own.
        saliency: also compute the Grad-CAM of the landfill class (``models.dense_grad_cam``,
            at the network's own output stride).
        streamed: evaluate the network stripe by stripe down the rows (``models.row_streamed``:
            the same values, 1.1-1.3x faster per pixel on CPU, where whole-tile activations do not
            fit in the cache); None: on CPU when the network is a chain of layers that can.
            False: the network's own forward pass (the benchmarks' bare model).

    Attributes:
        card: the checkpoint's card; with ``stride``, its ``output_stride`` and ``offset`` are
            those of the densified network.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        device: str = "auto",
        threads: int | None = None,
        threshold: float = 0.5,
        stride: int | None = None,
        saliency: bool = False,
        streamed: bool | None = None,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
        with _BUILD:  # torch.fx tracing (to_dense) is not thread-safe: one model at a time
            model, card = load_checkpoint(checkpoint, map_location="cpu")
            base = to_dense(model).to(self.device).eval()
            dense = to_dense(base, stride).eval()
        if stride is not None:
            card = card.replace(
                output_stride=int(getattr(dense, "output_stride")),  # noqa: B009
                offset=int(getattr(dense, "offset")),  # noqa: B009
            )
        self.card: ModelCard = card
        # channels_last: 2-3x faster convolutions with oneDNN (CPU) and cuDNN (GPU)
        self.model: torch.nn.Module = dense.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if streamed is None:  # GPUs are better off with one large launch per layer
            streamed = self.device.type == "cpu"
        if streamed:
            self.model = row_streamed(self.model) or self.model
        if saliency and not isinstance(base, FullyConvolutional):
            raise ModelConfigError(f"saliency needs a patch classifier, not a {card.arch} network")
        self.cam_model = base if saliency and isinstance(base, FullyConvolutional) else None
        self.cam_class = saliency_class(card.classes)
        self.threshold = threshold
        self.mean = torch.tensor(card.mean, dtype=torch.float32, device=self.device)[:, None, None]
        self.std = torch.tensor(card.std, dtype=torch.float32, device=self.device)[:, None, None]

    def _tensors(self, pixels: np.ndarray, valid: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        # arrays from Ray's object store are read-only: copy only then
        raw = torch.from_numpy(np.require(pixels, requirements="W")).to(self.device)
        return raw, torch.from_numpy(np.require(valid, requirements="W")).to(self.device)

    def _normalized(self, raw: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """(1, C, h, w) network input from raw (C, h, w) pixels and their validity (h, w):
        normalized with the card's statistics, invalid pixels at the mean."""
        x = raw.sub(self.mean).div_(self.std).mul_(ok)
        return x[None].contiguous(memory_format=torch.channels_last)

    def _input(self, pixels: np.ndarray, valid: np.ndarray) -> torch.Tensor:
        """The network's input (1, C, h, w) of a read window."""
        return self._normalized(*self._tensors(pixels, valid))

    @torch.inference_mode()
    def heatmap(self, pixels: np.ndarray, valid: np.ndarray) -> torch.Tensor:
        """Class probabilities (K, Hh, Wh) on the model's heatmap lattice of a read window.

        Pixels are normalized with the card's statistics; invalid pixels are set to the mean.
        """
        if isinstance(self.model, RowStreamed):
            logits = self._streamed(pixels, valid)
        else:
            logits = self.model(self._input(pixels, valid))
        return torch.softmax(logits[0].float(), dim=0).contiguous()

    def _streamed(self, pixels: np.ndarray, valid: np.ndarray) -> torch.Tensor:
        """The row-streamed network's logits, each stripe normalized as it is fed (in the
        cache, where normalizing the whole tile first costs three passes over memory)."""
        from models import StreamTooShort

        assert isinstance(self.model, RowStreamed)
        raw, ok = self._tensors(pixels, valid)

        def source(a: int, b: int) -> torch.Tensor:
            return self._normalized(raw[:, a:b], ok[a:b])

        try:
            return self.model.stream((1, *raw.shape), source)
        except StreamTooShort:  # the network says why (a window smaller than the patch)
            return self.model.network(self._input(pixels, valid))

    def probabilities(
        self, pixels: np.ndarray, valid: np.ndarray, rows: range, cols: range
    ) -> torch.Tensor:
        """Class probabilities (K, len(rows), len(cols)) at pixels of a read window."""
        c = self.card
        return upsample_heatmap(self.heatmap(pixels, valid), c.output_stride, c.offset, rows, cols)

    def saliency(self, pixels: np.ndarray, valid: np.ndarray) -> torch.Tensor:
        """Grad-CAM of the landfill class (h, w) in [0, 1] at every pixel of a read window.

        Raises:
            ValueError: the predictor was made without ``saliency``.
        """
        if self.cam_model is None:
            raise ValueError("this predictor computes no saliency: make it with saliency=True")
        return dense_grad_cam(self.cam_model, self._input(pixels, valid), self.cam_class)

    def predict_batch(self, items: list[TileInput]) -> list[TileResult]:
        """:meth:`predict` of several tiles, those of the same read-window shape in one
        forward pass (what keeps a GPU busy); the results are those of one tile at a time."""
        results: dict[int, TileResult] = {}
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(items):
            if item.empty or self.cam_model is not None:
                results[i] = self.predict(item)
            else:
                groups.setdefault(item.pixels.shape, []).append(i)
        for members in groups.values():
            if len(members) == 1:
                results[members[0]] = self.predict(items[members[0]])
                continue
            try:
                with torch.inference_mode():
                    x = torch.cat([self._input(items[i].pixels, items[i].valid) for i in members])
                    heat = torch.softmax(self.model(x).float(), dim=1)
            except torch.OutOfMemoryError:  # a batch too large for this GPU: one at a time
                torch.cuda.empty_cache()
                for i in members:
                    results[i] = self.predict(items[i])
                continue
            for j, i in enumerate(members):
                results[i] = self._result(items[i], heat[j].contiguous())
        return [results[i] for i in range(len(items))]

    def predict_group(self, group: GroupInput) -> list[TileResult]:
        """The results of a group's emitted tiles, from one pass of the network over the
        group's window; each is that of its tile alone, up to float rounding (the halo makes
        tiled inference exact). With saliency, tile by tile."""
        items = group.items
        if len(group.group.tiles) == 1 or self.cam_model is not None:
            return self.predict_batch(items)
        if all(item.empty for item in items):
            return [self.predict(item) for item in items]
        with torch.inference_mode():
            heat = self.heatmap(group.pixels, group.valid)
        return [
            self.predict(item) if item.empty else self._result(item, heat, group.origin)
            for item in items
        ]

    def predict(self, item: TileInput) -> TileResult:
        """Core probabilities and class mask of one tile (and its saliency when asked for);
        nodata where ``core_mask`` is False."""
        tile = item.tile
        if item.empty:
            h, w = int(tile.core.height), int(tile.core.width)
            k = len(self.card.classes)
            blank = np.full((h, w), NODATA, np.uint8)
            saliency = blank.copy() if self.cam_model is not None else None
            return TileResult(tile, np.full((k - 1, h, w), NODATA, np.uint8), blank, saliency)
        with torch.inference_mode():
            heat = self.heatmap(item.pixels, item.valid)
        return self._result(item, heat)

    def _result(
        self, item: TileInput, heat: torch.Tensor, origin: tuple[int, int] | None = None
    ) -> TileResult:
        """A tile's result from the heatmap (K, Hh, Wh) of its read window, or of the window
        whose first pixel is at grid ``origin`` (row, col) (its group's)."""
        tile = item.tile
        h, w = int(tile.core.height), int(tile.core.width)
        if origin is None:
            r0, c0 = tile.core_offset
        else:
            r0, c0 = int(tile.core.row_off) - origin[0], int(tile.core.col_off) - origin[1]
        invalid = ~item.core_mask
        c = self.card
        with torch.inference_mode():
            fg = upsample_heatmap(
                heat[1:], c.output_stride, c.offset, range(r0, r0 + h), range(c0, c0 + w)
            )
            if len(fg) == 1:  # one foreground class: no arg-max to take
                mask = fg[0] >= self.threshold
            else:
                best = fg.argmax(0)
                best_p = fg.gather(0, best[None])[0]
                mask = torch.where(best_p >= self.threshold, best + 1, torch.zeros_like(best))
            q = fg.mul_(SCALE).round_().to(torch.uint8).cpu().numpy()
            m = mask.to(torch.uint8).cpu().numpy()
        partial = not bool(item.core_mask.all())
        if partial:
            q[:, invalid] = NODATA
            m[invalid] = NODATA
        s = None
        if self.cam_model is not None:  # autograd: outside inference mode
            t0, l0 = tile.core_offset  # the saliency of the tile's own read window
            cam = self.saliency(item.pixels, item.valid)[t0 : t0 + h, l0 : l0 + w]
            s = torch.round(cam * SCALE).to(torch.uint8).cpu().numpy()
            if partial:
                s[invalid] = NODATA
        return TileResult(tile, q, m, s)
