"""The shared geometry (``cnnmath._geometry``): resolved once, remembered only for plain ints, immutable,
and the one source of argument errors and output sizes for every windowed module."""

from __future__ import annotations

import numpy as np
import pytest

import cnnmath
from cnnmath import symbolic
from cnnmath._geometry import Geometry, conv_geometry, window_geometry


def test_plain_int_calls_share_one_geometry_and_others_are_resolved_afresh():
    """Plain ints (and tuples of them) hit the cache; NumPy ints do not, and still resolve the same."""
    a = conv_geometry((1, 3, 32, 32), (8, 3, 3, 3), 1, 1, 1, 1)
    assert conv_geometry((1, 3, 32, 32), (8, 3, 3, 3), 1, 1, 1, 1) is a
    assert conv_geometry((1, 3, 32, 32), (8, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), 1, 1) is not a
    b = conv_geometry((1, 3, 32, 32), (8, 3, 3, 3), np.int64(1), 1, 1, 1)
    assert b is not a and b is not conv_geometry((1, 3, 32, 32), (8, 3, 3, 3), np.int64(1), 1, 1, 1)
    assert (b.k, b.s, b.d, b.pads, b.out) == (a.k, a.s, a.d, a.pads, a.out) == (
        (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), (32, 32))


def test_a_cached_int_does_not_let_a_bool_through():
    """True == 1 and hash(True) == hash(1): a cache keyed on values alone would accept stride=True."""
    conv_geometry((1, 3, 8, 8), (4, 3, 3, 3), 1, 0, 1, 1)
    with pytest.raises(TypeError, match="stride must be a positive int or a tuple of 2 ints, got True"):
        conv_geometry((1, 3, 8, 8), (4, 3, 3, 3), True, 0, 1, 1)
    with pytest.raises(ValueError, match="groups must be a positive int, got True"):
        conv_geometry((1, 3, 8, 8), (4, 3, 3, 3), 1, 0, 1, True)
    with pytest.raises(TypeError, match="stride"):
        cnnmath.conv(np.ones((1, 3, 8, 8)), np.ones((4, 3, 3, 3)), stride=True)


def test_geometry_is_immutable():
    """A remembered geometry is shared by every caller, so nobody may change it."""
    geo = window_geometry((9, 9), 3, 2, 1, 1)
    assert isinstance(geo, Geometry)
    with pytest.raises(AttributeError, match="immutable"):
        geo.out = (1, 1)
    assert geo.out == (5, 5) and geo.padded == (11, 11)


BAD = [(dict(stride=0), ValueError, "stride must be a positive int, got 0"),
       (dict(dilation=-1), ValueError, "dilation must be a positive int, got -1"),
       (dict(padding=-2), ValueError, "padding must be a non-negative int, got -2"),
       (dict(padding="wide"), ValueError, 'padding must be an int, a tuple, or one of "valid", "same", "full"')]


@pytest.mark.parametrize("kwargs,error,message", BAD, ids=[str(b[0]) for b in BAD])
def test_every_module_gives_the_same_error(kwargs, error, message):
    """conv, im2col, local, streaming, the counts, output_size and the symbolic sums resolve through
    the one geometry: the same bad argument gets the same one-line error everywhere."""
    x, w = np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3))
    calls = {
        "conv": lambda: cnnmath.conv(x, w, **kwargs),
        "conv_transpose": lambda: cnnmath.conv_transpose(x, np.ones((2, 3, 3, 3)), **kwargs),
        "im2col": lambda: cnnmath.im2col(x, 3, **kwargs),
        "locally_connected": lambda: cnnmath.locally_connected(x, np.ones((3, 4, 4, 2, 3, 3)), **kwargs),
        "conv3d_stream": lambda: cnnmath.conv3d_stream([np.ones((1, 2, 6, 6))] * 4, np.ones((3, 2, 3, 3, 3)),
                                                       **kwargs),
        "conv_macs": lambda: cnnmath.conv_macs((2, 6, 6), 3, 3, **kwargs),
        "output_size": lambda: cnnmath.output_size((6, 6), 3, **kwargs),
        "symbolic.conv_sum": lambda: symbolic.conv_sum((6,), (3,), **kwargs),
    }
    for name, call in calls.items():
        if name == "conv_transpose" and isinstance(kwargs.get("padding"), str):
            continue  # a transposed convolution takes no padding strings at all (its own message)
        with pytest.raises(error) as info:
            call()
        assert message in str(info.value), f"{name}: {info.value}"


def test_symbolic_output_size_is_the_numeric_one():
    """conv_sum's output has cnnmath.output_size's size for every padding form."""
    for padding in (0, 2, "same", "full", ((2, 0),)):
        for stride, dilation in ((1, 1), (2, 1), (1, 2)):
            if padding == "same" and stride != 1:
                continue
            y = symbolic.conv_sum((9,), (3,), stride=stride, padding=padding, dilation=dilation)[0]
            assert len(y) == cnnmath.output_size(9, 3, stride, padding, dilation), (padding, stride, dilation)
