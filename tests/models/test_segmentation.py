from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from models import FCN8s, FCN16s, FCN32s, UNet


@pytest.mark.parametrize("cls", [FCN32s, FCN16s, FCN8s, UNet])
def test_any_size_in_same_size_out(cls):
    model = cls(widths=(8, 8, 16, 16, 16), fc_width=16) if cls is not UNet else UNet(base=8)
    model.eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, 257, 301))
    assert y.shape == (2, 2, 257, 301)


@pytest.mark.parametrize("cls,factor", [(FCN32s, 32), (FCN16s, 2), (FCN8s, 2)])
def test_upsampling_is_bilinear_at_initialisation(cls, factor):
    model = cls(num_classes=3)
    up = model.up_final if factor == 32 else model.up2
    scores = torch.randn(1, 3, 6, 7)
    with torch.no_grad():
        got = up(scores)
    want = F.interpolate(scores, scale_factor=factor, mode="bilinear", align_corners=False)
    assert got.shape == want.shape
    m = factor  # away from the border, where bilinear interpolation clamps and the kernel pads
    torch.testing.assert_close(got[..., m:-m, m:-m], want[..., m:-m, m:-m], atol=1e-5, rtol=0)
    if factor == 2:
        with torch.no_grad():
            final = model.up_final(scores)
        scale = 16 if cls is FCN16s else 8
        want = F.interpolate(scores, scale_factor=scale, mode="bilinear", align_corners=False)
        torch.testing.assert_close(
            final[..., scale:-scale, scale:-scale],
            want[..., scale:-scale, scale:-scale],
            atol=1e-5,
            rtol=0,
        )
