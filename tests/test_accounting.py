"""cnnmath.accounting: seed 003's 16x16x3 table, parameter counts against torch numel, output
shapes against a torch forward pass, and MACs against a count that does not use the formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import cnnmath as cm


def seed_003_layers():
    """Seed 003 section IV: Conv1 (K=8, F=3, S=1, P=1), Pool1 (F=2, S=2), Conv2 (K=16, F=3, P=0),
    Pool2 (F=2, S=2), Flatten, Dense (10)."""
    return [cm.Conv(8, 3, stride=1, padding=1), cm.MaxPool(2, stride=2), cm.Conv(16, 3), cm.MaxPool(2),
            cm.Flatten(), cm.Dense(10)]


def test_seed_003_table_shapes_and_params():
    """16x16x8, 8x8x8, 6x6x16, 3x3x16, 144, 10; 224 + 0 + 1,168 + 0 + 0 + 1,450 = 2,842."""
    rows = cm.summarize((3, 16, 16), seed_003_layers())
    assert [r.name for r in rows] == ["Input", "Conv1", "MaxPool1", "Conv2", "MaxPool2", "Flatten1", "Dense1"]
    hwc = [r.output_shape[1:] + r.output_shape[:1] if len(r.output_shape) > 1 else r.output_shape for r in rows]
    assert hwc == [(16, 16, 3), (16, 16, 8), (8, 8, 8), (6, 6, 16), (3, 3, 16), (144,), (10,)]
    assert [r.params for r in rows] == [0, 224, 0, 1168, 0, 0, 1450]
    assert sum(r.params for r in rows) == 2842
    text = cm.format_summary(rows)
    assert "Total parameters:      2,842" in text
    for shape in ("16 x 16 x 8", "8 x 8 x 8", "6 x 6 x 16", "3 x 3 x 16", "144", "10"):
        assert shape in text
    assert "1,168" in text and "1,450" in text


def test_seed_003_table_against_torch():
    """Per-layer numel of torch.nn.Conv2d/MaxPool2d/Linear and shapes from a torch forward pass."""
    tnet = [torch.nn.Conv2d(3, 8, 3, 1, 1), torch.nn.MaxPool2d(2, 2), torch.nn.Conv2d(8, 16, 3),
            torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(144, 10)]
    rows = cm.summarize((3, 16, 16), seed_003_layers())[1:]
    h = torch.zeros(1, 3, 16, 16)
    for row, layer in zip(rows, tnet):
        h = layer(h)
        assert row.output_shape == tuple(h.shape[1:]), f"{row.name}: {row.output_shape} != {tuple(h.shape[1:])}"
        assert row.params == sum(p.numel() for p in layer.parameters()), row.name


def test_summary_of_a_sequential_uses_the_same_layer_objects_that_run():
    """Sequential.summary counts the very layers it runs; the built parameters have those sizes."""
    net = cm.Sequential(seed_003_layers())
    out = net.forward(np.zeros((2, 3, 16, 16)))
    assert out.shape == (2, 10)
    rows = cm.summarize((3, 16, 16), net)
    assert sum(v.size for v in net.params().values()) == sum(r.params for r in rows) == 2842
    assert "2,842" in net.summary((3, 16, 16))


def test_activation_memory_and_batch_dtype():
    """bytes = batch * prod(shape) * itemsize; float32 by default."""
    rows = cm.summarize((3, 16, 16), seed_003_layers(), batch_size=4, dtype="float64")
    assert rows[1].activation_bytes == 4 * 8 * 16 * 16 * 8
    assert rows[-1].activation_bytes == 4 * 10 * 8
    assert cm.activation_bytes((8, 16, 16)) == 8 * 16 * 16 * 4


def test_activation_layers_count_nothing_but_memory():
    rows = cm.summarize((3, 8, 8), [cm.Conv(4, 3, padding=1), cm.ReLU(), cm.Sigmoid(), cm.AvgPool(2)])
    assert [r.params for r in rows] == [0, 112, 0, 0, 0]
    assert [r.macs for r in rows[2:]] == [0, 0, 0]
    assert rows[2].output_shape == rows[3].output_shape == (4, 8, 8)
    assert rows[4].output_shape == (4, 4, 4)


# ------------------------------------------------------------------------------------------
# Conv counts against torch over a grid of hyper-parameters
# ------------------------------------------------------------------------------------------

CONV_CASES = [
    # (in_shape, c_out, k, stride, padding, dilation, groups, bias)
    ((3, 9), 4, 3, 1, 0, 1, 1, True),
    ((4, 10), 6, 4, 2, 1, 2, 2, False),
    ((3, 7, 8), 5, 3, 2, 1, 1, 1, True),
    ((4, 9, 9), 8, (2, 3), (1, 2), (0, 2), (2, 1), 4, True),
    ((6, 8, 8), 6, 3, 1, "same", 1, 6, True),
    ((2, 5, 6, 7), 4, 3, (1, 2, 1), 1, 1, 2, True),
    ((2, 4, 5, 5), 3, (2, 1, 3), 1, ((1, 0), (0, 0), (2, 1)), 1, 1, False),
]


def _torch_conv(in_shape, c_out, k, s, p, d, g, bias):
    nd = len(in_shape) - 1
    cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[nd]
    if isinstance(p, tuple) and isinstance(p[0], tuple):  # asymmetric: pad explicitly, then conv
        flat = [v for pair in reversed(p) for v in pair]
        conv = cls(in_shape[0], c_out, k, s, 0, d, g, bias=bias, dtype=torch.float64)
        return lambda x: conv(torch.nn.functional.pad(x, flat)), conv
    conv = cls(in_shape[0], c_out, k, s, p, d, g, bias=bias, dtype=torch.float64)
    return conv, conv


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_counts_vs_torch(case):
    """output shape == torch forward shape; parameter count == torch numel; MACs == brute force."""
    in_shape, c_out, k, s, p, d, g, bias = case
    layer = cm.Conv(c_out, k, s, p, d, g, bias)
    run, module = _torch_conv(*case)
    with torch.no_grad():
        out = run(torch.zeros((1,) + in_shape, dtype=torch.float64))
    assert layer.output_shape(in_shape) == tuple(out.shape[1:])
    assert layer.param_count(in_shape) == sum(t.numel() for t in module.parameters())
    assert layer.macs(in_shape) == brute_force_macs(in_shape, c_out, k, s, p, d, g, count_padding=True)
    assert cm.conv_macs(in_shape, c_out, k, s, p, d, g, count_padding=False) == brute_force_macs(
        in_shape, c_out, k, s, p, d, g, count_padding=False)


def brute_force_macs(in_shape, c_out, k, s, p, d, g, count_padding):
    """Count the products a convolution performs without the MAC formula.

    Every product ``x * w`` of the convolution becomes ``1 * 1`` when the input and
    the kernel are all ones, so the sum of the output of ``cnnmath.conv_naive``
    (no bias) is exactly the number of multiply-adds. With ``count_padding`` the
    padding is made of ones too (padded explicitly, then a valid convolution), so
    the taps on padding count; otherwise padding is zeros and they do not.
    """
    nd = len(in_shape) - 1
    kk = cm.accounting._kernel(k, nd)
    w = np.ones((c_out, in_shape[0] // g) + kk)
    x = np.ones((1,) + in_shape)
    if count_padding:
        ss = cm._args.int_tuple(s, nd, "stride")
        dd = cm._args.int_tuple(d, nd, "dilation")
        pads = cm._args.resolve_padding(p, nd, kk, ss, dd)
        x = np.pad(x, [(0, 0), (0, 0)] + list(pads), constant_values=1.0)
        p = 0
    y = cm.conv_naive(x, w, None, s, p, d, g)
    total = float(y.sum())
    assert total == int(total)
    return int(total)


def test_dense_counts_vs_torch_and_brute_force():
    layer = cm.Dense(7)
    lin = torch.nn.Linear(12, 7)
    assert layer.param_count((12,)) == sum(t.numel() for t in lin.parameters()) == cm.dense_params(12, 7)
    assert cm.Dense(7, bias=False).param_count((12,)) == 84
    assert layer.macs((12,)) == int(cm.dense(np.ones(12), np.ones((7, 12))).sum())


def test_pool_output_shapes_vs_torch():
    for in_shape, k, s, p in [((3, 9, 9), 2, None, 0), ((3, 9, 9), 3, 2, 1), ((2, 7), 2, 1, 1),
                              ((2, 5, 6, 7), (1, 2, 3), (1, 2, 2), 0)]:
        nd = len(in_shape) - 1
        f = [None, torch.nn.functional.max_pool1d, torch.nn.functional.max_pool2d,
             torch.nn.functional.max_pool3d][nd]
        out = f(torch.zeros((1,) + in_shape), k, s, p)
        for cls in (cm.MaxPool, cm.AvgPool):
            layer = cls(k, s, p)
            assert layer.output_shape(in_shape) == tuple(out.shape[1:])
            assert layer.param_count(in_shape) == layer.macs(in_shape) == 0


def test_accounting_errors_name_argument_and_value():
    with pytest.raises(ValueError, match="groups=3 must divide the input channels C_in=4"):
        cm.conv_params(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="out_channels must be a positive int, got 0"):
        cm.conv_output_shape((3, 8, 8), 0, 3)
    with pytest.raises(ValueError, match=r"larger than the padded input"):
        cm.summarize((3, 4, 4), [cm.Conv(2, 5)])
    with pytest.raises(ValueError, match="Dense expects a flat input"):
        cm.summarize((3, 4, 4), [cm.Dense(2)])
    with pytest.raises(TypeError, match=r"input_shape must be a tuple of ints"):
        cm.summarize("3x16x16", [])
    with pytest.raises(ValueError, match='layout must be "both", "CHW" or "HWC", got \'WHC\''):
        cm.format_summary([], layout="WHC")
    with pytest.raises(TypeError, match=r"layers\[0\] has no output_shape\(\) method"):
        cm.summarize((3, 4, 4), [object()])


conv_layer = st.builds(
    lambda c, k, s, p, d: ("conv", c, k, s, p, d),
    st.integers(1, 4), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2), st.integers(1, 2))
pool_layer = st.builds(lambda k, s: ("pool", k, s), st.integers(1, 3), st.one_of(st.none(), st.integers(1, 2)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(conv_layer, pool_layer), min_size=1, max_size=4), st.integers(8, 14),
       st.booleans())
def test_summary_shapes_and_counts_equal_what_the_network_produces(specs, size, avg):
    """Property: summarize's output shapes are the shapes Sequential.forward produces, and the
    parameter totals are the sizes of the arrays it builds (any stack that fits)."""
    layers = []
    for spec in specs:
        if spec[0] == "conv":
            _, c, k, s, p, d = spec
            layers.append(cm.Conv(c, k, s, p, d))
        else:
            _, k, s = spec
            layers.append((cm.AvgPool if avg else cm.MaxPool)(k, s))
    layers += [cm.Flatten(), cm.Dense(3)]
    try:
        rows = cm.summarize((2, size, size), layers)
    except ValueError:
        assume(False)
    net = cm.Sequential(layers, rng=0)
    net.build((2, size, size))
    h = np.random.default_rng(0).normal(size=(1, 2, size, size))
    for row, layer in zip(rows[1:], net.layers):
        h = layer.forward(h)
        assert row.output_shape == h.shape[1:], (row.name, row.output_shape, h.shape)
    assert sum(r.params for r in rows) == sum(v.size for v in net.params().values())


def test_docstring_examples():
    """The examples in cnnmath.accounting's docstrings run and print what they claim."""
    import doctest

    import cnnmath.accounting

    result = doctest.testmod(cnnmath.accounting, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
