from __future__ import annotations

import torch

from models import PatchClassifier, fit_classifier, grad_cam


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
