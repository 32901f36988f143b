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


def test_dense_geometry_of_an_unpadded_classifier():
    geo = dense_geometry(PatchClassifier(patch_size=32, channels=(8, 16, 32)))
    # the receptive window of an unpadded classifier is exactly its patch
    assert geo == {
        "output_stride": 4,
        "receptive_field": 32,
        "rf_start": 0,
        "offset": 16,
        "align": 4,
        "halo": 20,
    }
    assert halo_for(32, 4, 16) == 20 and halo_for(1, 1, 0) == 1
    assert halo_for(181, 16, 0, rf_start=-90) == 112  # a padded segmenter: symmetric window


class UserClassifier(nn.Module):
    """A classifier as a user might write it: functional calls, a residual, view-flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3)
        self.b = nn.Conv2d(8, 8, 3, padding=0)
        self.skip = nn.Conv2d(3, 8, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 8 * 8, 16)
        self.fc2 = nn.Linear(16, 2)
        self.num_classes = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.b(nn.functional.relu(self.a(x)))) + self.skip(x)
        y = self.pool(y)
        y = y.view(y.size(0), -1)
        return self.fc2(nn.functional.relu(self.fc1(y)))


def test_user_defined_classifier():
    torch.manual_seed(3)
    model = UserClassifier().eval()
    fcn = convolutionalize(model, patch_size=20)
    assert fcn.output_stride == 2
    x = torch.randn(1, 3, 60, 52)
    with torch.no_grad():
        heat = fcn(x)
        ref = _patchwise(model, x, 20, 2, heat.shape[2], heat.shape[3])
    torch.testing.assert_close(heat, ref, atol=1e-4, rtol=0)


class FunctionalPooling(nn.Module):
    """Strided pooling by function call: the converter cannot account for its stride."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 3 * 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.max_pool2d(self.conv(x), 2), 1))


def test_functional_strided_pooling_is_refused_by_name():
    with pytest.raises(ConversionError, match="max_pool2d"):
        convolutionalize(FunctionalPooling(), patch_size=8)
