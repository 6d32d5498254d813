"""cnnmath.conv_transpose against torch.nn.functional.conv_transpose{1,2,3}d, its naive twin,
numeric gradients, and the adjoint identity with cnnmath.conv."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import cnnmath
from cnnmath import (conv, conv_backward, conv_input_grad, conv_transpose, conv_transpose_backward,
                     conv_transpose_naive)
from tests.helpers import assert_array_close, assert_gradient, make_conv_case, to_torch

TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def torch_conv_transpose(x, w, b, grad, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """torch's transposed convolution and its autograd gradients, with (before, after) padding
    pairs done by cropping the unpadded result (torch has no asymmetric form)."""
    ndim = x.ndim - 2
    xt = to_torch(x).requires_grad_(True)
    wt = to_torch(w).requires_grad_(True)
    bt = None if b is None else to_torch(b).requires_grad_(True)
    crop = None
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        crop = [p if isinstance(p, (tuple, list)) else (p, p) for p in padding]
        padding = 0
    out = TORCH_CONV_T[ndim](xt, wt, bt, stride=stride, padding=padding, output_padding=output_padding,
                             dilation=dilation, groups=groups)
    if crop is not None:
        out = out[(slice(None), slice(None)) + tuple(slice(pb, out.shape[2 + i] - pa)
                                                     for i, (pb, pa) in enumerate(crop))]
    out.backward(to_torch(grad))
    db = bt.grad.numpy() if bt is not None else None
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), db


# (spatial size, C_in, C_out, kernel, kwargs, bias)
CASES = [
    ((5,), 3, 2, (3,), dict(), True),
    ((6,), 2, 4, (4,), dict(stride=2, padding=1), False),
    ((5,), 4, 6, (3,), dict(stride=3, padding=2, output_padding=2, groups=2), True),
    ((4,), 2, 2, (3,), dict(stride=1, dilation=3, output_padding=2), True),  # output_padding < dilation
    ((5,), 2, 3, (3,), dict(stride=2, padding=((1, 0),)), True),
    ((4, 5), 3, 2, (3, 3), dict(stride=2, padding=1, output_padding=1), True),
    ((5, 4), 4, 4, (2, 3), dict(stride=(1, 2), padding=(0, 1), dilation=(2, 1), groups=4), True),
    ((4, 4), 4, 6, (3, 3), dict(stride=2, dilation=2, groups=2, output_padding=(1, 0)), False),
    ((4, 3), 2, 3, (3, 3), dict(stride=(2, 1), padding=((2, 0), (0, 1))), True),
    ((3, 4, 3), 2, 3, (3, 3, 3), dict(stride=2, padding=1, output_padding=1), True),
    ((3, 3, 4), 4, 2, (2, 3, 2), dict(stride=(1, 2, 2), dilation=(2, 1, 1), groups=2), False),
]
IDS = [f"{len(c[0])}d-{i}-" + ",".join(f"{k}={v}" for k, v in c[4].items()) for i, c in enumerate(CASES)]


make_case = functools.partial(make_conv_case, transposed=True)  # w is (C_in, C_out / groups, *k)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_backward_match_torch_float64(case):
    """conv_transpose and its backward equal torch's conv_transpose and autograd (float64)."""
    x, w, b, kw = make_case(case)
    out = conv_transpose(x, w, b, **kw)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    t_out, t_dx, t_dw, t_db = torch_conv_transpose(x, w, b, dout, **kw)
    assert_array_close(out, t_out, rtol=1e-10, atol=1e-10, what="conv_transpose forward")
    dx, dw, db = conv_transpose_backward(dout, x, w, **kw)
    assert_array_close(dx, t_dx, rtol=1e-10, atol=1e-10, what="dx")
    assert_array_close(dw, t_dw, rtol=1e-10, atol=1e-10, what="dw")
    expected_db = t_db if t_db is not None else dout.sum(axis=(0,) + tuple(range(2, dout.ndim)))
    assert_array_close(db, expected_db, rtol=1e-10, atol=1e-10, what="db")
    sym = kw.get("padding", 0)
    if not (isinstance(sym, tuple) and isinstance(sym[0], tuple)):
        assert out.shape[2:] == _as_tuple(cnnmath.transposed_output_size(
            x.shape[2:], w.shape[2:], kw.get("stride", 1), sym, kw.get("output_padding", 0),
            kw.get("dilation", 1)))


def _as_tuple(v):
    return v if isinstance(v, tuple) else (v,)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_preserved_and_close_to_torch(case):
    """float32 stays float32 in the forward and all three gradients."""
    x, w, b, kw = make_case(case, dtype=np.float32)
    out = conv_transpose(x, w, b, **kw)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    t_out, t_dx, t_dw, _ = torch_conv_transpose(x, w, b, dout, **kw)
    assert_array_close(out, t_out, rtol=1e-5, atol=1e-5, what="forward float32")
    dx, dw, db = conv_transpose_backward(dout, x, w, **kw)
    assert_array_close(dx, t_dx, rtol=1e-5, atol=1e-4, what="dx float32")
    assert_array_close(dw, t_dw, rtol=1e-5, atol=1e-4, what="dw float32")
    assert db.dtype == np.float32


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fast_matches_naive_twin(case):
    """The col2im path equals the scatter loop."""
    x, w, b, kw = make_case(case, n=1)
    assert_array_close(conv_transpose(x, w, b, **kw), conv_transpose_naive(x, w, b, **kw),
                       rtol=1e-12, atol=1e-12, what="conv_transpose vs naive")


@pytest.mark.parametrize("case", [CASES[2], CASES[3], CASES[5], CASES[7], CASES[8], CASES[10]])
def test_conv_transpose_backward_numeric_gradient(case):
    """dx, dw, db agree with float64 centred differences of sum(conv_transpose * dout)."""
    x, w, b, kw = make_case(case, n=1, seed=3)
    if b is None:
        b = np.zeros(w.shape[1] * kw.get("groups", 1))
    dout = np.random.default_rng(4).standard_normal(conv_transpose(x, w, b, **kw).shape)
    dx, dw, db = conv_transpose_backward(dout, x, w, **kw)
    assert_gradient(dx, lambda v: conv_transpose(v, w, b, **kw), x, dout, bound=1e-6, what="dx")
    assert_gradient(dw, lambda v: conv_transpose(x, v, b, **kw), w, dout, bound=1e-6, what="dw")
    assert_gradient(db, lambda v: conv_transpose(x, w, v, **kw), b, dout, bound=1e-6, what="db")


def test_conv_transpose_is_conv_input_gradient():
    """conv_transpose(y, w) is exactly conv_backward's dx with dout = y (the seed's h(K, H, s))."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    y = rng.standard_normal(conv(x, w, stride=2, padding=1).shape)
    dx, _, _ = conv_backward(y, x, w, stride=2, padding=1)
    out = conv_transpose(y, w, stride=2, padding=1, output_padding=(0, 1))
    assert_array_close(out, dx, what="conv_transpose vs conv dx")
    assert_array_close(conv_input_grad(y, x.shape, w, stride=2, padding=1), dx, what="conv_input_grad")


def test_inputs_not_mutated():
    """Read-only inputs go through forward and backward untouched."""
    x, w, b, kw = make_case(CASES[5], dtype=np.float32)
    arrays = [x, w, b]
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    out = conv_transpose(x, w, b, **kw)
    dout = np.ones_like(out)
    dout.flags.writeable = False
    conv_transpose_backward(dout, x, w, **kw)
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)


small = st.integers(min_value=1, max_value=3)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ndim=st.integers(1, 3), k=small, s=small, d=small,
       p=st.integers(0, 2), groups=st.sampled_from([1, 2]), n=st.integers(4, 7))
def test_adjointness_conv_and_conv_transpose(seed, ndim, k, s, d, p, groups, n):
    """<conv(x, w), y> == <x, conv_transpose(y, w)> for every stride, padding and dilation."""
    rng = np.random.default_rng(seed)
    if d * (k - 1) + 1 > n + 2 * p:
        return
    x = rng.standard_normal((2, 4) + (n,) * ndim)
    w = rng.standard_normal((2 * groups, 4 // groups) + (k,) * ndim)
    kw = dict(stride=s, padding=p, dilation=d, groups=groups)
    z = conv(x, w, **kw)
    y = rng.standard_normal(z.shape)
    # the output_padding that recovers x's size (always < stride)
    m = z.shape[2]
    op = n - cnnmath.transposed_output_size(m, k, stride=s, padding=p, dilation=d)
    assert 0 <= op < s
    xt = conv_transpose(y, w, stride=s, padding=p, output_padding=op, dilation=d, groups=groups)
    assert xt.shape == x.shape
    lhs, rhs = np.vdot(z, y), np.vdot(x, xt)
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), f"<conv x, y> = {lhs} != <x, conv_T y> = {rhs}"


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), k=small, s=small, d=small, p=st.integers(0, 3), op=st.integers(0, 2))
def test_transposed_output_size_equals_real_shape(n, k, s, d, p, op):
    """transposed_output_size predicts the real shape, and both agree with torch (or all refuse)."""
    x = np.zeros((1, 1, n))
    w = np.zeros((1, 1, k))
    kw = dict(stride=s, padding=p, output_padding=op, dilation=d)
    try:
        expected = cnnmath.transposed_output_size(n, k, **kw)
    except ValueError:
        with pytest.raises(ValueError):
            conv_transpose(x, w, **kw)
        with pytest.raises(RuntimeError):
            F.conv_transpose1d(to_torch(x), to_torch(w), **kw)
        return
    assert conv_transpose(x, w, **kw).shape == (1, 1, expected)
    assert F.conv_transpose1d(to_torch(x), to_torch(w), **kw).shape[2] == expected
