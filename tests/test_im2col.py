"""im2col / col2im: the documented column layout, torch's unfold/fold, and exact adjointness."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from cnnmath import col2im, conv, im2col
from tests.helpers import assert_array_close, to_torch


@pytest.mark.parametrize("kw", [dict(kernel_size=3), dict(kernel_size=(2, 3), stride=(2, 1), padding=1),
                                dict(kernel_size=3, dilation=2, padding=(2, 1), stride=2),
                                dict(kernel_size=1, stride=2)])
def test_matches_torch_unfold_and_fold(kw):
    """2-D im2col is F.unfold and col2im is F.fold (same row/column order)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 8))
    cols = im2col(x, **kw)
    ref = F.unfold(to_torch(x), **kw).numpy()
    assert_array_close(cols, ref, what="im2col vs F.unfold")
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, **kw)
    assert_array_close(back, F.fold(to_torch(c), output_size=x.shape[2:], **kw).numpy(), rtol=1e-12,
                       atol=1e-12, what="col2im vs F.fold")


def test_layout_formula_3d():
    """cols[n, (c, j), (o)] = xp[n, c, o*s + j*d] with (c, j) and (o) in row-major order."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 4, 6)).astype(np.float32)
    k, s, d, p = (2, 3, 2), (2, 1, 2), (1, 1, 2), ((1, 0), (0, 1), (1, 1))
    cols = im2col(x, k, stride=s, padding=p, dilation=d)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(p))
    out = tuple((xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(3))
    assert cols.shape == (2, 2 * 12, int(np.prod(out))) and cols.dtype == np.float32
    for n in range(2):
        for row, (c, *j) in enumerate(np.ndindex(2, *k)):
            for col, o in enumerate(np.ndindex(*out)):
                pos = tuple(o[i] * s[i] + j[i] * d[i] for i in range(3))
                assert cols[n, row, col] == xp[(n, c) + pos]


def test_conv_is_weight_matrix_times_columns():
    """conv(x, w)[n] == w.reshape(C_out, -1) @ im2col(x)[n] (the GEMM form)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 2))
    cols = im2col(x, (3, 2), stride=2, padding=1)
    y = conv(x, w, stride=2, padding=1)
    assert_array_close((w.reshape(4, -1) @ cols).reshape(y.shape), y, what="GEMM form")


small = st.integers(1, 3)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ndim=st.integers(1, 3), k=small, s=small, d=small,
       pb=st.integers(0, 2), pa=st.integers(0, 2), n=st.integers(3, 7))
def test_col2im_is_adjoint_of_im2col(seed, ndim, k, s, d, pb, pa, n):
    """<im2col(x), c> == <x, col2im(c)> for any stride, asymmetric padding and dilation."""
    if d * (k - 1) + 1 > n + pb + pa:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2) + (n,) * ndim)
    kw = dict(kernel_size=k, stride=s, padding=((pb, pa),) * ndim, dilation=d)
    cols = im2col(x, **kw)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, **kw)
    assert back.shape == x.shape
    lhs, rhs = np.vdot(cols, c), np.vdot(x, back)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), f"{lhs} != {rhs}"


def test_integer_input_and_no_mutation():
    """Integers become float64; the input is not written to."""
    x = np.arange(2 * 5 * 5).reshape(1, 2, 5, 5)
    x.flags.writeable = False
    cols = im2col(x, 3, padding="same")
    assert cols.dtype == np.float64 and cols.shape == (1, 18, 25)
    assert np.array_equal(x, np.arange(50).reshape(1, 2, 5, 5))


def test_errors_name_the_argument():
    """Bad shapes and hyper-parameters raise clear errors."""
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match="x must have at least 3 dimensions"):
        im2col(np.zeros((5, 5)), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        im2col(x, 7)
    with pytest.raises(ValueError, match="stride must be a positive int, got 0"):
        im2col(x, 3, stride=0)
    with pytest.raises(ValueError, match=r"cols must have shape \(1, 18, 9\)"):
        col2im(np.zeros((1, 18, 10)), x.shape, 3)
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        im2col(np.array([["a"]]), 1)
