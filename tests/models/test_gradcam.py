from __future__ import annotations

import pytest
import torch

from models import (
    PatchClassifier,
    convolutionalize,
    dense_grad_cam,
    fit_classifier,
    grad_cam,
    grad_cam_halo,
)


def _square_data(n: int, gen: torch.Generator):
    x = torch.randn(n, 3, 32, 32, generator=gen) * 0.3
    y = torch.randint(0, 2, (n,), generator=gen)
    corners = torch.randint(2, 20, (n, 2), generator=gen)
    for i in range(n):
        if y[i]:
            r, c = corners[i].tolist()
            x[i, :, r : r + 10, c : c + 10] += 2.0
    return x, y, corners


def test_grad_cam_peaks_inside_the_square():
    gen = torch.Generator().manual_seed(0)
    x, y, _ = _square_data(600, gen)
    model = PatchClassifier(patch_size=32, channels=(8, 16), hidden=16, padding=1)
    fit_classifier(model, x, y, epochs=6, batch_size=32, lr=3e-3, seed=0, augment=False)
    xt, yt, corners = _square_data(40, torch.Generator().manual_seed(1))
    hits = total = 0
    for i in range(len(yt)):
        if not yt[i]:
            continue
        cam = grad_cam(model, xt[i], target_class=1)
        assert cam.shape == (32, 32) and float(cam.max()) <= 1.0
        r, c = divmod(int(cam.argmax()), 32)
        r0, c0 = corners[i].tolist()
        hits += (r0 - 1 <= r < r0 + 11) and (c0 - 1 <= c < c0 + 11)
        total += 1
    assert total >= 10 and hits / total >= 0.9, (hits, total)


@pytest.mark.parametrize("arch", [{"channels": (8, 16)}, {"channels": (8, 16), "pool_last": True}])
def test_dense_grad_cam_is_the_mean_of_grad_cam_over_covering_patches(arch):
    torch.manual_seed(0)
    model = PatchClassifier(patch_size=32, hidden=16, **arch).eval()
    with torch.no_grad():  # weights that leave positive evidence somewhere
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    fcn = convolutionalize(model)
    s = fcn.output_stride
    x = torch.randn(3, 48, 45)
    saliency = dense_grad_cam(fcn, x, target_class=1)
    total, count = torch.zeros(48, 45), torch.zeros(48, 45)
    for i in range((48 - 32) // s + 1):
        for j in range((45 - 32) // s + 1):
            total[i * s : i * s + 32, j * s : j * s + 32] += grad_cam(
                model, x[:, i * s : i * s + 32, j * s : j * s + 32], target_class=1
            )
            count[i * s : i * s + 32, j * s : j * s + 32] += 1
    covered = count > 0
    assert not covered.all()  # the last column is in no patch: 0 there
    torch.testing.assert_close(
        saliency[covered], total[covered] / count[covered], atol=1e-5, rtol=0
    )
    assert (saliency[~covered] == 0).all()
    assert saliency.std() > 0.01  # a constant map would pass trivially
    # a single patch: exactly grad_cam
    patch = x[:, 5:37, 3:35]
    torch.testing.assert_close(
        dense_grad_cam(fcn, patch, 1), grad_cam(model, patch, 1), atol=1e-5, rtol=0
    )


def test_grad_cam_halo_covers_every_patch_over_a_pixel():
    assert grad_cam_halo(32, 4) == 32  # 31 pixels of context, rounded up to the stride
    assert grad_cam_halo(32, 4, rf_start=-5, receptive_field=40) == 36
