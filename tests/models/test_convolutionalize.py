from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ConversionError, PatchClassifier, convolutionalize, dense_geometry, halo_for


def _patchwise(model: nn.Module, x: torch.Tensor, patch: int, stride: int, rows: int, cols: int):
    out = torch.empty(x.shape[0], model.num_classes, rows, cols)
    for i in range(rows):
        for j in range(cols):
            out[:, :, i, j] = model(
                x[:, :, i * stride : i * stride + patch, j * stride : j * stride + patch]
            )
    return out


@pytest.mark.parametrize("channels", [(8, 16), (8, 16, 32)])
def test_heatmap_equals_classifier_on_every_patch(channels):
    torch.manual_seed(0)
    model = PatchClassifier(patch_size=32, channels=channels, hidden=16).eval()
    fcn = convolutionalize(model)
    assert fcn.output_stride == 2 ** (len(channels) - 1)
    x = torch.randn(2, 3, 256, 320)
    with torch.no_grad():
        heat = fcn(x)
        rows, cols = heat.shape[2], heat.shape[3]
        assert rows == (256 - 32) // fcn.output_stride + 1
        assert cols == (320 - 32) // fcn.output_stride + 1
        ref = _patchwise(model, x, 32, fcn.output_stride, rows, cols)
    torch.testing.assert_close(heat, ref, atol=1e-4, rtol=0)


def test_batchnorm_and_global_pooling_are_converted():
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 3),
    )
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    model.eval()
    fcn = convolutionalize(model, patch_size=24)
    x = torch.randn(1, 3, 64, 72)
    with torch.no_grad():
        heat = fcn(x)
        model.num_classes = 3
        ref = _patchwise(model, x, 24, 2, heat.shape[2], heat.shape[3])
    torch.testing.assert_close(heat, ref, atol=1e-4, rtol=0)


def test_unconvertible_layer_is_named():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LSTM(4, 4), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ConversionError, match="LSTM"):
        convolutionalize(model, patch_size=8)


def test_halo_makes_interpolation_windows_fit():
    # cell i sees [i*s, i*s+rf) and sits at i*s+offset; check the formula by brute force
    for rf, s in [(32, 4), (32, 8), (17, 2), (1, 1)]:
        off = rf // 2
        halo = halo_for(rf, s, off)
        assert halo % s == 0
        for r in range(halo, halo + 3 * s):  # first core pixels
            i0 = (r - off) // s
            assert i0 >= 0
            assert (i0 + 1) * s + rf <= r + halo + s + rf  # window of i0+1 within read
    geo = dense_geometry(PatchClassifier(patch_size=32, channels=(8, 16, 32)))
    assert geo == {"output_stride": 4, "receptive_field": 32, "offset": 16, "halo": 20}
