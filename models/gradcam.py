"""Grad-CAM saliency for patch classifiers (Selvaraju et al.), on one patch or densely."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from .fully_convolutional import FullyConvolutional

__all__ = ["dense_grad_cam", "grad_cam", "grad_cam_halo"]


@contextmanager
def _capture(layer: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """The output of ``layer`` in the next forward pass, kept as the layer produced it.

    The hook hands the rest of the network a copy, so an in-place operation after the layer
    (``ReLU(inplace=True)``) changes neither the activations kept nor what they differentiate.
    """
    store: dict[str, torch.Tensor] = {}

    def keep(_: nn.Module, __: object, output: torch.Tensor) -> torch.Tensor:
        store["a"] = output
        return output.clone()

    handle = layer.register_forward_hook(keep)
    try:
        yield store
    finally:
        handle.remove()


def _last_conv(model: nn.Module) -> nn.Module:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no Conv2d layer to explain")
    return convs[-1]


def grad_cam(
    model: nn.Module, image: torch.Tensor, target_class: int, layer: nn.Module | None = None
) -> torch.Tensor:
    """Class activation map of ``target_class`` at input resolution, scaled to [0, 1].

    The activations of ``layer`` (default: the last ``Conv2d``) are weighted by the spatial mean
    of the class score's gradient, summed over channels, rectified and upsampled bilinearly.

    Args:
        model: a classifier returning (N, classes) logits.
        image: (C, H, W) or (1, C, H, W), normalized as the model expects.
        target_class: class whose evidence is mapped.
        layer: the convolution to explain.

    Returns:
        (H, W) saliency; all zeros when no positive evidence exists.
    """
    x = image[None] if image.dim() == 3 else image
    layer = layer if layer is not None else _last_conv(model)
    was_training = model.training
    model.eval()
    try:
        with _capture(layer) as store, torch.enable_grad():
            x = x.detach().requires_grad_(True)
            score = model(x)[0, target_class]
            (grad,) = torch.autograd.grad(score, store["a"])
    finally:
        model.train(was_training)
    act = store["a"].detach()
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    return cam / peak if peak > 0 else cam


def grad_cam_halo(
    patch_size: int, output_stride: int, rf_start: int = 0, receptive_field: int | None = None
) -> int:
    """Halo (pixels on each side of a tile core) that makes :func:`dense_grad_cam` tile exactly.

    A pixel takes the Grad-CAM of every patch that covers it: cells whose patch starts less than
    ``patch_size`` pixels before it, each depending on its receptive window
    ``[rf_start, rf_start + receptive_field)`` relative to that start.

    Returns:
        The halo in input pixels, a multiple of ``output_stride``.
    """
    rf = patch_size if receptive_field is None else receptive_field
    need = max(patch_size - 1 - rf_start, rf_start + rf - 1, 0)
    return -(-need // output_stride) * output_stride


def _window(fcn: FullyConvolutional, layer: nn.Module, ref: torch.Tensor) -> tuple[int, int, int]:
    """``(h, w, step)``: the activations of ``layer`` one patch has, and how many positions
    of them lie between neighbouring heatmap cells."""
    p, s = fcn.patch_size, fcn.output_stride
    sizes = []
    with torch.no_grad():
        for side in (p, p + s):
            with _capture(layer) as store:
                fcn(ref.new_zeros(1, fcn.in_channels, side, side))
            sizes.append(store["a"].shape[-2:])
    step = sizes[1][0] - sizes[0][0]
    if step < 1 or sizes[1][1] - sizes[0][1] != step:
        raise ValueError("the explained layer does not follow the heatmap lattice")
    return int(sizes[0][0]), int(sizes[0][1]), int(step)


def dense_grad_cam(
    fcn: FullyConvolutional,
    image: torch.Tensor,
    target_class: int,
    layer: str | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """Grad-CAM of every patch a convolutionalized classifier scores, combined per pixel.

    Heatmap cell ``(i, j)`` stands for the patch at ``(i * stride, j * stride)``; its map is
    :func:`grad_cam` of the classifier on that patch (gradient of the cell's ``target_class``
    logit with respect to ``layer``'s activations inside the cell's own window, averaged over
    that window, times the activations, rectified, upsampled to the patch and divided by its
    maximum). A pixel gets the mean of the maps of the patches covering it, 0 where none does.
    Its value depends only on input pixels less than a patch (or receptive field) away, so
    tiles with :func:`grad_cam_halo` reproduce the whole image exactly.

    The layers after the explained one keep cells apart (the head is 1 x 1 convolutions), so
    the gradient of a sum of cell logits is the sum of the cells' gradients; cells whose windows
    do not overlap are differentiated together, in ``ceil(h / step) * ceil(w / step)`` backward
    passes through the head only. Exact for unpadded classifiers; with padding, a cell sees the
    patch's real surroundings (as its score does, see :func:`~models.convolutionalize`).

    Args:
        fcn: a network from :func:`~models.convolutionalize` (not densified).
        image: (C, H, W) or (1, C, H, W), normalized as the classifier expects, at least a patch.
        target_class: class whose evidence is mapped.
        layer: name of the explained convolution in ``fcn.body`` (default: the classifier's
            last ``Conv2d``, as :func:`grad_cam`).
        chunk: cells upsampled at once (bounds memory).

    Returns:
        (H, W) saliency in [0, 1].
    """
    x = (image[None] if image.dim() == 3 else image).detach()
    name = layer or fcn.feature_layer
    if not name:
        raise ValueError("the network does not name its last convolution: pass layer=")
    module = fcn.body.get_submodule(name)
    h, w, step = _window(fcn, module, x)
    p, s = fcn.patch_size, fcn.output_stride
    was_training = fcn.training
    fcn.eval()
    try:
        with _capture(module) as store, torch.enable_grad():
            score = fcn(x)[0, target_class]
            act = store["a"]
            n_i, n_j = score.shape
            # the windows of the last cells may reach past the activations (pooling floors):
            # the gradient is zero there, and so is the padding
            pad_h = max(0, (n_i - 1) * step + h - act.shape[2])
            pad_w = max(0, (n_j - 1) * step + w - act.shape[3])
            alpha = act.new_zeros(act.shape[1], n_i, n_j)
            m_i, m_j = -(-h // step), -(-w // step)
            for a in range(m_i):
                for b in range(m_j):
                    part = score[a::m_i, b::m_j]
                    if part.numel() == 0:
                        continue
                    (grad,) = torch.autograd.grad(part.sum(), act, retain_graph=True)
                    grad = F.pad(grad, (0, pad_w, 0, pad_h))
                    mean = F.avg_pool2d(grad, (h, w), stride=step)[0]
                    alpha[:, a::m_i, b::m_j] = mean[:, a:n_i:m_i, b:n_j:m_j]
    finally:
        fcn.train(was_training)
    act = F.pad(act.detach(), (0, pad_w, 0, pad_h))[0]
    span_i, span_j = (n_i - 1) * step + 1, (n_j - 1) * step + 1
    cam = act.new_empty(n_i, n_j, h, w)
    for u in range(h):
        for v in range(w):
            cam[:, :, u, v] = (alpha * act[:, u : u + span_i : step, v : v + span_j : step]).sum(0)
    cam = F.relu(cam).reshape(n_i * n_j, 1, h, w)
    # each cell's map divided by its peak at patch resolution, as grad_cam does
    peak = torch.cat(
        [
            F.interpolate(c, size=(p, p), mode="bilinear", align_corners=False).amax(dim=(1, 2, 3))
            for c in cam.split(chunk)
        ]
    )
    cam = torch.where(peak[:, None, None, None] > 0, cam / peak[:, None, None, None], 0.0)
    # spread every cell's map over its patch: upsampling is linear, so it is a transposed
    # convolution whose kernels are the upsampled basis maps
    basis = torch.eye(h * w, dtype=cam.dtype, device=cam.device).reshape(h * w, 1, h, w)
    kernel = F.interpolate(basis, size=(p, p), mode="bilinear", align_corners=False)
    cells = cam.reshape(n_i, n_j, h * w).permute(2, 0, 1)[None]
    total = F.conv_transpose2d(cells, kernel, stride=s)[0, 0]
    count = F.conv_transpose2d(cells.new_ones(1, 1, n_i, n_j), cells.new_ones(1, 1, p, p), stride=s)
    out = torch.where(count[0, 0] > 0, total / count[0, 0].clamp(min=1), 0.0)
    rows, cols = x.shape[-2:]
    out = F.pad(out, (0, max(0, cols - out.shape[1]), 0, max(0, rows - out.shape[0])))
    return out[:rows, :cols].clamp(0, 1)
