"""Grad-CAM saliency for patch classifiers (Selvaraju et al.)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["grad_cam"]


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
    if layer is None:
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError("the model has no Conv2d layer to explain")
        layer = convs[-1]
    store: dict[str, torch.Tensor] = {}

    def keep(_: nn.Module, __: object, output: torch.Tensor) -> None:
        store["a"] = output
        output.register_hook(lambda g: store.__setitem__("g", g))

    handle = layer.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            score = model(x)[0, target_class]
            model.zero_grad(set_to_none=True)
            score.backward()
    finally:
        handle.remove()
        model.train(was_training)
    act, grad = store["a"].detach(), store["g"].detach()
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    return cam / peak if peak > 0 else cam
