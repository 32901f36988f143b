from __future__ import annotations

import torch

from models import IGNORE_INDEX, border_weight_map, segmentation_loss, soft_dice_loss
from models.losses import connected_components, random_pixel_mask


def test_connected_components_are_8_connected():
    m = torch.zeros(8, 8, dtype=torch.bool)
    m[1, 1] = m[2, 2] = True  # diagonal neighbours: one object
    m[5:7, 5:7] = True
    cc = connected_components(m)
    assert cc[1, 1] == cc[2, 2] != 0 and cc[5, 5] not in (0, cc[1, 1])
    assert int(cc.max()) == 2


def test_border_weights_peak_in_narrow_gaps():
    lab = torch.zeros(40, 40, dtype=torch.long)
    lab[5:15, 5:15] = 1
    lab[5:15, 18:30] = 1  # 3 px gap
    lab[0, :] = IGNORE_INDEX
    w = border_weight_map(lab, w0=10, sigma=5)
    assert w[10, 16] > 5 * w[30, 10]  # the gap outweighs open background
    assert w[0, 5] == 0  # ignored pixels weigh nothing
    assert torch.allclose(w[10, 10], w[10, 20])  # inside objects only the class weight


def test_loss_ignores_unlabelled_pixels_and_dice_is_zero_when_perfect():
    labels = torch.randint(0, 2, (2, 16, 16))
    logits = torch.randn(2, 2, 16, 16)
    masked = labels.clone()
    masked[:, :8] = IGNORE_INDEX
    a = segmentation_loss(logits, masked)
    b = segmentation_loss(logits[:, :, 8:], labels[:, 8:])
    assert torch.allclose(a, b)
    perfect = torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(perfect, labels) < 1e-3


def test_random_pixel_mask_drops_the_asked_fraction():
    labels = torch.zeros(1, 200, 200, dtype=torch.long)
    out = random_pixel_mask(labels, 0.3, torch.Generator().manual_seed(0))
    assert abs((out == IGNORE_INDEX).float().mean().item() - 0.3) < 0.01
