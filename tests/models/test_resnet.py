from __future__ import annotations

import math

import torch

from models import ResNetClassifier, convolutionalize

from .test_fully_convolutional import _patchwise


def _randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_valid_resnet_heatmap_equals_classifier_on_every_patch():
    torch.manual_seed(0)
    for block in ("basic", "bottleneck"):
        model = _randomize_bn(
            ResNetClassifier(patch_size=96, width=8, layers=(1, 1), padded=False, block=block)
        )
        fcn = convolutionalize(model)
        x = torch.randn(1, 3, 256, 320)
        with torch.no_grad():
            heat = fcn(x)
            ref = _patchwise(model, x, 96, fcn.output_stride, heat.shape[2], heat.shape[3])
        torch.testing.assert_close(heat, ref, atol=1e-4, rtol=0)


def test_padded_resnet_equals_classifier_on_a_patch_and_is_translation_equivariant_inside():
    """With padding, cells see real neighbours instead of zeros (see convolutionalize's
    docstring): pinned are the patch itself and every cell whose window lies in the image."""
    torch.manual_seed(1)
    model = _randomize_bn(ResNetClassifier(patch_size=64, width=8, layers=(1, 1, 1)))
    fcn = convolutionalize(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fcn(x)[:, :, 0, 0], model(x), atol=1e-4, rtol=0)
    from models import dense_geometry

    geo = dense_geometry(model)
    s, start, rf = geo["output_stride"], geo["rf_start"], geo["receptive_field"]
    assert start < 0 and rf > 64  # padding widens the window beyond the patch
    big = torch.randn(1, 3, 480, 480)
    with torch.no_grad():
        whole = fcn(big)
        # a crop on the stride lattice: interior cells must not change
        c0 = 10 * s
        crop = fcn(big[:, :, c0:, c0:])
    first = math.ceil(-start / s)  # first cell of the crop whose window starts inside it
    n = crop.shape[2] - first - math.ceil((start + rf) / s)
    torch.testing.assert_close(
        crop[:, :, first : first + n, first : first + n],
        whole[:, :, 10 + first : 10 + first + n, 10 + first : 10 + first + n],
        atol=1e-4,
        rtol=0,
    )
    assert not torch.allclose(
        crop[:, :, 0, 0], whole[:, :, 10, 10], atol=1e-4
    )  # border cells differ


def test_torchvision_state_dict_names_load_with_weights_only(tmp_path):
    model = ResNetClassifier(num_classes=2, patch_size=224)
    keys = set(model.state_dict())
    for k in (
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer1.1.bn2.bias",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.running_mean",
        "layer4.1.conv2.weight",
        "fc.weight",
        "fc.bias",
    ):
        assert k in keys
    assert len(keys) == 122  # as torchvision's resnet18
    path = tmp_path / "user.pth"
    torch.save(model.state_dict(), path)
    other = ResNetClassifier(num_classes=2, patch_size=224)
    result = other.load_state_dict(torch.load(path, weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    r50 = ResNetClassifier(layers=(3, 4, 6, 3), block="bottleneck")
    assert "layer1.0.conv3.weight" in r50.state_dict() and r50.fc.in_features == 2048
