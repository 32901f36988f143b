"""A convolution with its rectifier in one oneDNN pass: the two layers' values, where it runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import models.fused as fused
import models.streaming as streaming
from models import PatchClassifier, row_streamed, to_dense
from models.fused import conv_relu

needs_onednn = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN"
)


def _cl(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


@needs_onednn
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("cin", "cout", "k", "padding", "stride", "dilation", "shape", "bias"),
    [
        (3, 16, 3, (0, 0), 1, 1, (1, 3, 64, 330), True),  # a first layer, unpadded
        (16, 32, 3, (0, 1), 1, 1, (1, 16, 9, 333), True),  # the columns padded (a stripe)
        (16, 16, 3, (0, 1), 1, 1, (1, 16, 3, 2104), False),  # a thin stripe, no bias
        (64, 64, 5, (2, 2), 1, 2, (2, 64, 17, 19), True),  # dilated (a densified FC layer)
        (32, 64, 5, (0, 0), 1, 1, (1, 32, 12, 270), True),  # the 5 x 5 an FC layer became
    ],
)
def test_a_fused_convolution_has_the_values_of_the_convolution_then_its_rectifier(
    cin, cout, k, padding, stride, dilation, shape, bias, threads
):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, bias=bias)
    conv = conv.eval()
    x = _cl(torch.randn(shape))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            got = conv_relu(x, conv)
            want = torch.relu(conv(x))
            # the padding given replaces the layer's own (the stream pads the rows itself)
            cols = conv_relu(x, conv, (0, padding[1]))
            ref = torch.relu(
                nn.functional.conv2d(
                    x, conv.weight, conv.bias, conv.stride, (0, padding[1]), conv.dilation
                )
            )
    finally:
        torch.set_num_threads(before)
    assert got is not None, "a channels-last float32 CPU input is fused"
    assert (got >= 0).all() and (got == 0).any(), "rectified"
    assert torch.equal(got, want), "the two layers' values, bit for bit"
    assert cols is not None and torch.equal(cols, ref)


@needs_onednn
@pytest.mark.parametrize(
    ("k", "stride", "shape", "threads"),
    [
        (3, 1, (1, 8, 12, 12), 2),  # a small single image: ATen's native kernel
        (1, 1, (1, 64, 20, 300), 1),  # 1 x 1 on one thread: ATen's native kernel
        (1, 2, (1, 8, 10, 12), 2),
    ],
)
def test_where_aten_would_not_use_onednn_the_two_layers_run(k, stride, shape, threads):
    conv = nn.Conv2d(shape[1], 4, k, stride=stride).eval()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            assert conv_relu(_cl(torch.randn(shape)), conv) is None
    finally:
        torch.set_num_threads(before)


def test_convolutions_of_their_own_are_left_to_their_forward():
    class Standardized(nn.Conv2d):  # weight standardization (timm's StdConv2d does this)
        def forward(self, x):
            w = (self.weight - self.weight.mean((1, 2, 3), keepdim=True)) / 2
            return nn.functional.conv2d(x, w, self.bias)

    x = _cl(torch.randn(1, 16, 40, 300))
    with torch.inference_mode():
        assert conv_relu(x, Standardized(16, 16, 3)) is None

        class OwnConvForward(nn.Conv2d):
            def _conv_forward(self, x, weight, bias):  # type: ignore[no-untyped-def]
                return super()._conv_forward(x, weight * 2, bias)

        assert conv_relu(x, OwnConvForward(16, 16, 3)) is None
        hooked = nn.Conv2d(16, 16, 3)
        hooked.register_forward_hook(lambda m, i, o: o * 2)
        assert conv_relu(x, hooked) is None


def test_inputs_it_cannot_take_are_left_to_the_two_layers():
    conv = nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 9, 9)
    assert conv_relu(x, conv) is None, "not channels-last"
    assert conv_relu(_cl(x.double()), conv.double()) is None, "float64"
    conv = conv.float()
    assert conv_relu(_cl(x), conv) is None, "gradients wanted: autograd must see both layers"
    with torch.no_grad():
        strided = _cl(torch.randn(1, 3, 9, 18))[:, :, :, ::2]
        assert conv_relu(strided, conv) is None, "a strided view"
    reflect = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
    with torch.no_grad():
        assert conv_relu(_cl(x), reflect) is None, "padding other than zeros"


def _dense_classifier() -> nn.Module:
    torch.manual_seed(1)
    model = PatchClassifier(patch_size=48).eval()
    return to_dense(model).eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]


@needs_onednn
def test_a_row_streamed_network_fuses_its_convolutions_with_their_rectifiers(monkeypatch):
    dense = _dense_classifier()
    streamed = row_streamed(dense, 96 << 10)
    assert streamed is not None
    calls: list[torch.Size] = []

    def counting(x, conv, padding=None):
        out = conv_relu(x, conv, padding)
        if out is not None:
            calls.append(out.shape)
        return out

    monkeypatch.setattr(streaming, "conv_relu", counting)
    x = _cl(torch.rand(1, 3, 150, 97) * 4 - 2)
    with torch.inference_mode():
        want, got = dense(x), streamed(x)
    assert calls, "no convolution ran fused with its rectifier"
    # each convolution followed by a rectifier (not moved behind a max pooling) is fused
    fusable = sum(
        1
        for s in streamed._stages
        if isinstance(s.layer, nn.Conv2d) and s.after and type(s.after[0]) is nn.ReLU
    )
    assert fusable >= 3
    assert len(calls) >= fusable
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_without_the_operator_the_stream_runs_the_two_layers_to_the_same_values(monkeypatch):
    dense = _dense_classifier()
    streamed = row_streamed(dense, 96 << 10)
    assert streamed is not None
    x = _cl(torch.rand(1, 3, 120, 81) * 4 - 2)
    with torch.inference_mode():
        want = dense(x)
        with_op = streamed(x)
        monkeypatch.setattr(fused, "_WORKS", [False])  # a build of torch without it
        without = streamed(x)
    torch.testing.assert_close(with_op, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(without, want, atol=1e-5, rtol=1e-5)


def test_a_build_without_the_operator_falls_back_for_good(monkeypatch):
    class Missing:
        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(fused, "_WORKS", [None])
    monkeypatch.setattr(torch.ops, "mkldnn", Missing(), raising=False)
    conv = nn.Conv2d(3, 4, 3)
    with torch.inference_mode():
        assert conv_relu(_cl(torch.randn(1, 3, 64, 330)), conv) is None
    assert fused._WORKS == [False]
