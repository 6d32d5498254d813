"""Receptive field: the seed's numbers, and brute force (index propagation and autograd of
a stack of ones-kernels) over many random stacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnmath import (ReceptiveFieldRow, format_receptive_field_table, receptive_field,
                     receptive_field_table)


def influencing_positions(layers, o=0):
    """Brute force: input positions that output ``o`` of the last layer reads, by index propagation."""
    positions = {o}
    for k, s, d, p in reversed([tuple(layer) + (1, 0)[len(layer) - 2:] for layer in layers]):
        positions = {q * s + j * d - p for q in positions for j in range(k)}
    return positions


def test_seed001_vgg_and_formula():
    """Seed 001: three 3x3 layers see 7x7; RF = 1 + L(k-1); RF = 1 + sum (k_l - 1) prod_{i<l} s_i."""
    assert receptive_field([(3, 1)] * 3) == 7
    assert receptive_field([(5, 1)] * 4) == 1 + 4 * (5 - 1)
    layers = [(7, 2), (3, 2), (3, 1), (3, 2), (3, 1)]
    expected = 1 + sum((k - 1) * int(np.prod([s for _, s in layers[:i]])) for i, (k, _) in enumerate(layers))
    assert receptive_field(layers) == expected == 1 + 6 + 2 * 2 + 2 * 4 + 2 * 4 + 2 * 8
    assert receptive_field([]) == 1


def test_dilation_uses_effective_kernel():
    """A dilated kernel counts d(k-1)+1 samples (the seed 001 formula has no dilation)."""
    assert receptive_field([(3, 1, 2)]) == 5
    assert receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == 15  # WaveNet-style doubling
    assert receptive_field([(2, 1, 3)]) == 4 and influencing_positions([(2, 1, 3)]) == {0, 3}


def test_table_rows_and_text():
    """Table rows carry jump, RF, start/centre; the text rendering lists every layer."""
    rows = receptive_field_table([(3, 1, 1, 1), {"kernel": 2, "stride": 2}, (3, 1, 2, 2)])
    assert all(isinstance(r, ReceptiveFieldRow) for r in rows)
    assert [r.jump for r in rows] == [1, 1, 2]
    assert [r.output_jump for r in rows] == [1, 2, 2]
    assert [r.receptive_field for r in rows] == [3, 4, 12]
    assert [r.start for r in rows] == [-1, -1, -5]
    assert rows[2].centre == -5 + 11 / 2
    assert rows[0].as_dict()["effective_kernel"] == 3 and rows[2].effective_kernel == 5
    text = format_receptive_field_table([(3, 1)] * 3)
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "k", "s", "d", "p", "k_eff", "jump", "RF", "start", "centre"]
    assert [line.split()[7] for line in lines[2:]] == ["3", "5", "7"]
    assert format_receptive_field_table(receptive_field_table([(3, 1)] * 3)) == text


layer_st = st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2))


@settings(max_examples=150, deadline=None)
@given(st.lists(layer_st, min_size=1, max_size=5), st.integers(0, 4))
def test_matches_index_propagation(layers, o):
    """RF, start and output spacing equal the brute-force set of influencing input positions."""
    layers = [(k, s, d, min(p, d * (k - 1))) for k, s, d, p in layers]
    rows = receptive_field_table(layers)
    pos = influencing_positions(layers, o)
    last = rows[-1]
    assert max(pos) - min(pos) + 1 == last.receptive_field == receptive_field(layers)
    assert min(pos) == last.start + o * last.output_jump
    if all(d == 1 for _, _, d, _ in layers) and all(s <= k for k, s, _, _ in layers):
        assert pos == set(range(min(pos), max(pos) + 1))  # no gaps without dilation or skipping strides


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 2)), min_size=1, max_size=4))
def test_matches_autograd_of_ones_kernels(layers):
    """The input gradient of one output of a stack of ones-kernel convs is nonzero exactly on its field."""
    r = receptive_field(layers)
    n = r + 3 * int(np.prod([s for _, s, _ in layers])) + 8
    x = torch.ones(1, 1, n, dtype=torch.float64, requires_grad=True)
    y = x
    for k, s, d in layers:
        if y.shape[-1] < d * (k - 1) + 1:
            return  # stack shrinks below the kernel; nothing to test
        y = torch.nn.functional.conv1d(y, torch.ones(1, 1, k, dtype=torch.float64), stride=s, dilation=d)
    o = min(1, y.shape[-1] - 1)
    y[0, 0, o].backward()
    nz = np.flatnonzero(x.grad[0, 0].numpy())
    rows = receptive_field_table(layers)
    assert nz.max() - nz.min() + 1 == r
    assert nz.min() == rows[-1].start + o * rows[-1].output_jump


@pytest.mark.parametrize("layers", [[(3, 1)] * 3, [(3, 2), (3, 1, 2), (2, 2)], [(5, 1, 1, 2), (3, 3, 1, 1)]])
def test_matches_cnnmath_conv_backward(layers):
    """Backpropagating a one-hot output gradient with cnnmath.conv_backward lands exactly on the field."""
    from cnnmath import conv, conv_backward

    rows = receptive_field_table(layers)
    xs, x = [], np.ones((1, 1, 40))
    for k, s, d, p in (tuple(layer) + (1, 0)[len(layer) - 2:] for layer in layers):
        xs.append((x, k, s, d, p))
        x = conv(x, np.ones((1, 1, k)), stride=s, padding=p, dilation=d)
    g = np.zeros_like(x)
    g[0, 0, 2] = 1.0
    for x_in, k, s, d, p in reversed(xs):
        g = conv_backward(g, x_in, np.ones((1, 1, k)), stride=s, padding=p, dilation=d)[0]
    nz = np.flatnonzero(g[0, 0])
    first = rows[-1].start + 2 * rows[-1].output_jump
    assert nz.min() == max(first, 0) and nz.max() == first + rows[-1].receptive_field - 1


def test_vgg_2d_by_autograd():
    """Three 3x3 convs in 2-D: the gradient of one output covers exactly a 7x7 input patch."""
    x = torch.ones(1, 1, 15, 15, dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(3):
        y = torch.nn.functional.conv2d(y, torch.ones(1, 1, 3, 3, dtype=torch.float64))
    y[0, 0, 4, 2].backward()
    rows, cols = np.nonzero(x.grad[0, 0].numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 10, 2, 8)


@pytest.mark.parametrize("layers,exc,match", [
    ([(3, 0)], ValueError, r"layers\[0\] stride must be a positive int, got 0"),
    ([(3, 1), (0, 1)], ValueError, r"layers\[1\] kernel must be a positive int, got 0"),
    ([(3, 1, 0)], ValueError, r"layers\[0\] dilation must be a positive int, got 0"),
    ([(3, 1, 1, -1)], ValueError, r"layers\[0\] padding must be a non-negative int, got -1"),
    ([(3,)], ValueError, r"layers\[0\] must be \(kernel, stride\).*\(3,\)"),
    ([{"kernel": 3, "strid": 2}], ValueError, r"unknown keys \['strid'\]"),
    ([(3.5, 1)], ValueError, r"kernel must be a positive int, got 3.5"),
    (7, TypeError, r"layers must be a sequence.*7"),
])
def test_errors(layers, exc, match):
    """Bad layers raise errors naming the layer, the field and the value."""
    with pytest.raises(exc, match=match):
        receptive_field(layers)
