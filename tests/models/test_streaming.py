"""Row streaming: the chain's own values stripe by stripe, and no streaming where it cannot be."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from models import (
    FCN32s,
    PatchClassifier,
    ResNetClassifier,
    RowStreamed,
    UNet,
    row_streamed,
    to_dense,
)
from models.layers import DilatedAvgPool2d


def _random_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def _same(network: nn.Module, x: torch.Tensor, budget: int) -> RowStreamed:
    streamed = row_streamed(network, budget)
    assert streamed is not None
    # the budget makes the stripes much shorter than the input: several line-buffer hand-overs
    assert streamed.stripe_rows(x.shape) * 3 <= x.shape[2]
    with torch.inference_mode():
        want, got = network(x), streamed(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    return streamed


@pytest.mark.parametrize(
    ("patch", "batch_norm", "padding", "stride", "shape"),
    [
        (48, False, 0, None, (1, 3, 203, 150)),  # the network's own output stride 4
        (48, True, 0, 1, (2, 3, 131, 77)),  # densified to stride 1, two images
        (32, False, 1, 2, (1, 3, 150, 61)),  # zero-padded convolutions, stride 2
        (64, True, 0, 4, (1, 3, 257, 70)),
    ],
)
def test_a_dense_patch_classifier_streams_to_its_own_values(
    patch, batch_norm, padding, stride, shape
):
    torch.manual_seed(0)
    model = PatchClassifier(patch_size=patch, batch_norm=batch_norm, padding=padding).eval()
    _random_bn(model)
    dense = to_dense(to_dense(model), stride).eval()
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    streamed = _same(dense, x, budget=shape[0] * 16 * shape[3] * 4 * 12)
    assert streamed.output_stride == dense.output_stride
    assert streamed.offset == dense.offset


def test_strided_convolutions_and_poolings_stream():
    torch.manual_seed(1)
    chain = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.LeakyReLU(),
        nn.Conv2d(8, 8, 3, stride=2),
        nn.BatchNorm2d(8),
        nn.AvgPool2d(3, stride=1),
        DilatedAvgPool2d(2, dilation=2),
        nn.MaxPool2d(3, stride=2, dilation=2),
        nn.Conv2d(8, 4, (5, 3), dilation=(2, 1), padding=(2, 0)),
        nn.Sigmoid(),
    ).eval()
    _random_bn(chain)
    _same(chain, torch.randn(1, 3, 173, 41), budget=8 * 41 * 4 * 10)


def test_rectifiers_before_a_max_pooling_run_behind_it_on_the_same_values():
    """A ReLU before a max pooling is applied to the pooled values (a quarter of them): the
    maximum of rectified values is the rectified maximum, exactly; layers that are not
    monotone (GELU), or a pooling that is not a maximum, keep their place."""
    torch.manual_seed(7)
    chain = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 2, 1),
    ).eval()  # fmt: skip
    streamed = _same(chain, torch.randn(1, 3, 190, 47), budget=8 * 47 * 4 * 10)
    kinds = [
        (type(st.layer).__name__, [type(a).__name__ for a in st.after]) for st in streamed._stages
    ]
    assert kinds == [
        ("Conv2d", []), ("MaxPool2d", ["ReLU"]),
        ("Conv2d", ["GELU"]), ("MaxPool2d", []),
        ("Conv2d", ["ReLU"]), ("AvgPool2d", []),
        ("Conv2d", []),
    ]  # fmt: skip
    x = torch.randn(2, 8, 33, 21)
    x[0, 1, 4, 4] = float("nan")
    want, got = F.max_pool2d(F.relu(x), 2), F.relu(F.max_pool2d(x, 2))
    assert torch.equal(want.isnan(), got.isnan())
    assert torch.equal(want.nan_to_num(), got.nan_to_num())


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("channels_last", [True, False])
def test_non_overlapping_max_pooling_of_views_is_max_pool2d_exactly(k, channels_last):
    from models.streaming import _max_of_views, _tiling_pool

    torch.manual_seed(k)
    x = torch.randn(2, 16, 37, 53)  # sizes no multiple of k: floor mode drops the rest
    x[0, 3, 5, 7] = float("nan")
    x[1, 0, :k, :k] = float("-inf")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    want = F.max_pool2d(x, k)
    got = _max_of_views(x, k)
    assert got.shape == want.shape
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got.nan_to_num(), want.nan_to_num())
    assert _tiling_pool(nn.MaxPool2d(k)) and _tiling_pool(nn.MaxPool2d((k, k), stride=k))
    for other in (
        nn.MaxPool2d(3, stride=2),
        nn.MaxPool2d(2, padding=1),
        nn.MaxPool2d(2, dilation=2),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.MaxPool2d((2, 3)),
    ):
        assert not _tiling_pool(other)


def test_the_shortest_stripes_still_give_the_values():
    torch.manual_seed(2)
    dense = to_dense(PatchClassifier(patch_size=32)).eval()
    x = torch.randn(1, 3, 70, 40)
    streamed = row_streamed(dense, budget_bytes=1)
    assert streamed is not None
    with torch.inference_mode():
        torch.testing.assert_close(streamed(x), dense(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("budget", [1, 4 * 8 * 37 * 6, 4 * 8 * 37 * 40])
def test_seams_of_every_kind_give_the_values(budget):
    """Stripes shorter than a layer's span (held rows longer than the new ones), strides
    longer than the span, zero-padded rows at both ends: the outputs at the seams, computed
    from joined copies, and those inside a stripe, from views, are the chain's own."""
    torch.manual_seed(5)
    chain = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=2),
        nn.ReLU(),
        nn.Conv2d(8, 8, 1, stride=2),  # span 1, stride 2
        nn.Conv2d(8, 8, (7, 3), dilation=(2, 1)),  # span 13
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2),
        nn.Conv2d(8, 4, 3, padding=(3, 1)),
    ).eval()
    _same(chain, torch.randn(1, 3, 211, 37), budget=budget)
    streamed = row_streamed(chain, budget)
    assert streamed is not None
    with torch.inference_mode():
        x = torch.randn(2, 3, 97, 37)
        torch.testing.assert_close(streamed(x), chain(x), atol=1e-5, rtol=1e-5)


def test_a_stripe_s_rows_are_not_copied_behind_the_held_ones(monkeypatch):
    """Only the few outputs at a seam are computed from a copy: what the stream concatenates
    is a small part of what its layers take in (a concatenation per layer and stripe would
    copy all of it)."""
    import models.streaming as streaming

    torch.manual_seed(6)
    dense = to_dense(PatchClassifier(patch_size=48)).eval()
    streamed = row_streamed(dense, budget_bytes=16 * 300 * 4 * 40)
    assert streamed is not None
    copied, taken = [0], [0]
    cat, run = torch.cat, streaming._Stage.run

    def counting_cat(tensors, dim=0):
        out = cat(tensors, dim)
        copied[0] += out.numel()
        return out

    def counting_run(self, x):
        taken[0] += x.numel() if self.layer is not None else 0
        return run(self, x)

    monkeypatch.setattr(streaming.torch, "cat", counting_cat)
    monkeypatch.setattr(streaming._Stage, "run", counting_run)
    x = torch.randn(1, 3, 600, 300).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        got = streamed(x)
    monkeypatch.undo()
    with torch.inference_mode():
        torch.testing.assert_close(got, dense(x), atol=1e-5, rtol=1e-5)
    assert streamed.stripe_rows(x.shape) * 10 <= 600  # many stripes, many seams
    assert 0 < copied[0] < 0.25 * taken[0]


def test_an_input_smaller_than_the_patch_is_refused_like_the_network_does():
    dense = to_dense(PatchClassifier(patch_size=48)).eval()
    streamed = row_streamed(dense)
    assert streamed is not None
    with torch.inference_mode(), pytest.raises(ValueError, match="smaller than the patch"):
        streamed(torch.randn(1, 3, 40, 100))


def test_gradients_go_through_the_network_itself():
    torch.manual_seed(3)
    dense = to_dense(PatchClassifier(patch_size=32)).eval()
    streamed = row_streamed(dense)
    assert streamed is not None
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    streamed(x).sum().backward()
    want = x.grad.clone()
    x.grad = None
    dense(x).sum().backward()
    torch.testing.assert_close(want, x.grad)


def test_a_row_source_gives_the_values_of_its_whole_input():
    torch.manual_seed(4)
    dense = to_dense(PatchClassifier(patch_size=48)).eval()
    streamed = row_streamed(dense, budget_bytes=1 << 16)
    assert streamed is not None
    raw = torch.rand(3, 150, 90) * 255
    calls = []

    def source(a, b):
        calls.append((a, b))
        return raw[None, :, a:b] / 255

    with torch.inference_mode():
        got = streamed.stream((1, 3, 150, 90), source)
        want = dense(raw[None] / 255)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert len(calls) > 2 and calls[0][0] == 0 and calls[-1][1] == 150
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(calls))


class _OwnConv(nn.Conv2d):
    """A convolution computing otherwise (standardized weights): the stream, which calls
    ``conv2d`` itself on a padded layer, would skip that."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
        return nn.functional.conv2d(x, w, self.bias, padding=self.padding)


class _OwnConvForward(nn.Conv2d):
    """The same, through the hook ``nn.Conv2d.forward`` calls (``_conv_forward``)."""

    def _conv_forward(self, x, weight, bias):  # type: ignore[no-untyped-def]
        return super()._conv_forward(x, weight - weight.mean((1, 2, 3), keepdim=True), bias)


def _hooked(m: nn.Module) -> nn.Module:
    m.register_forward_hook(lambda _m, _i, out: out * 2)
    return m


@pytest.mark.parametrize(
    "network",
    [
        lambda: to_dense(ResNetClassifier(patch_size=64, width=16)),  # residual additions
        lambda: UNet(in_channels=3, num_classes=2),  # skip connections
        lambda: FCN32s(in_channels=3, num_classes=2),
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, padding=1)),  # -inf padding
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding="same")),
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")),
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, ceil_mode=True)),
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Upsample(scale_factor=2)),
        lambda: nn.Sequential(_OwnConv(3, 4, 3, padding=1)),  # a forward of its own
        lambda: nn.Sequential(_hooked(nn.Conv2d(3, 4, 3))),  # a hook on its output
        lambda: nn.Sequential(_OwnConvForward(3, 4, 3, padding=1)),  # its own _conv_forward
    ],
)
def test_what_cannot_stream_is_not_streamed(network):
    assert row_streamed(network().eval()) is None


def test_a_network_in_training_mode_is_not_streamed():
    dense = to_dense(PatchClassifier(patch_size=48, batch_norm=True))
    assert row_streamed(dense.train()) is None
    assert row_streamed(dense.eval()) is not None
