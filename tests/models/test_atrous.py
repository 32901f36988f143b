from __future__ import annotations

import pytest
import torch

from models import ConversionError, PatchClassifier, convolutionalize, densify

from .test_fully_convolutional import _patchwise


@pytest.mark.parametrize("stride", [8, 4, 2, 1])
def test_densify_equals_classifier_at_every_offset(stride):
    torch.manual_seed(0)
    model = PatchClassifier(
        patch_size=48, channels=(8, 8, 16, 16), convs_per_stage=1, hidden=16
    ).eval()
    fcn = convolutionalize(model)
    assert fcn.output_stride == 8
    dense = densify(fcn, stride)
    assert dense.output_stride == stride
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        heat = dense(x)
        # cells whose whole patch lies in the image (a few more may follow when pooling floors
        # leave the patch's last pixels unused)
        n = (96 - 48) // stride + 1
        assert heat.shape[2] >= n
        heat = heat[:, :, :n, :n]
        ref = _patchwise(model, x, 48, stride, n, n)
    torch.testing.assert_close(heat, ref, atol=1e-4, rtol=0)


def test_densify_global_average_pooling_classifier():
    torch.manual_seed(2)
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(8, 8, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    ).eval()
    model.num_classes = 2
    dense = densify(convolutionalize(model, patch_size=24), 1)
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        heat = dense(x)
        ref = _patchwise(model, x, 24, 1, heat.shape[2], heat.shape[3])
    torch.testing.assert_close(heat, ref, atol=1e-4, rtol=0)


def test_densify_rejects_a_stride_that_does_not_divide():
    fcn = convolutionalize(PatchClassifier(patch_size=32, channels=(8, 16, 32)))
    with pytest.raises(ConversionError, match="does not divide"):
        densify(fcn, 3)


def test_dense_geometry_at_a_stride_keeps_the_tile_alignment():
    from models import dense_geometry, to_dense

    model = PatchClassifier(patch_size=32, channels=(8, 16, 32)).eval()
    base = dense_geometry(model)
    assert base["output_stride"] == 4 and base["align"] == 4
    for stride in (1, 2, 4):
        geo = dense_geometry(model, stride)
        assert geo["output_stride"] == stride and geo["align"] == base["align"]
        assert (geo["rf_start"], geo["receptive_field"], geo["offset"]) == (0, 32, 16)
        assert geo["halo"] % base["align"] == 0 and geo["halo"] <= base["halo"]
        dense = to_dense(model, stride)
        assert dense.output_stride == stride
        assert dense.feature_layer == to_dense(model).feature_layer == "features.12"
