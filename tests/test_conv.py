"""cnnmath.conv against torch.nn.functional.conv{1,2,3}d, its naive twin, and numeric gradients.

The oracle is PyTorch (float64). Padding forms torch does not take directly are
translated independently here: (before, after) pairs become an explicit ``F.pad``,
"full" becomes the symmetric int padding ``d (k - 1)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import cnnmath
from cnnmath import conv, conv1d, conv2d, conv3d, conv_backward, conv_backward_naive, conv_naive
from tests.helpers import assert_array_close, assert_gradient, make_conv_case, to_torch

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# torch warns that padding="same" with an even kernel copies the input; that is its business.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _per_dim(v, ndim):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * ndim


def torch_padding_args(x_t, w_shape, padding, dilation):
    """Translate a cnnmath padding into (padded torch input, torch padding argument)."""
    ndim = len(w_shape) - 2
    if isinstance(padding, str):
        if padding == "full":
            d = _per_dim(dilation, ndim)
            return x_t, tuple(di * (k - 1) for di, k in zip(d, w_shape[2:]))
        return x_t, padding
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        pairs = [p if isinstance(p, (tuple, list)) else (p, p) for p in padding]
        flat = []
        for before, after in reversed(pairs):  # F.pad lists the last dimension first
            flat += [before, after]
        return F.pad(x_t, flat), 0
    return x_t, padding


def torch_conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, grad=None):
    """Forward (and, with ``grad``, autograd backward) of torch's conv; returns numpy arrays."""
    ndim = x.ndim - 2
    xt = to_torch(x).requires_grad_(grad is not None)
    wt = to_torch(w).requires_grad_(grad is not None)
    bt = None if b is None else to_torch(b).requires_grad_(grad is not None)
    xin, pad = torch_padding_args(xt, w.shape, padding, dilation)
    out = TORCH_CONV[ndim](xin, wt, bt, stride=stride, padding=pad, dilation=dilation, groups=groups)
    if grad is None:
        return out.detach().numpy()
    out.backward(to_torch(grad))
    db = bt.grad.numpy() if bt is not None else to_torch(grad).sum(dim=[0] + list(range(2, grad.ndim))).numpy()
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), db


# (spatial size, C_in, C_out, kernel, kwargs, bias)
CASES = [
    # 1D
    ((9,), 3, 4, (3,), dict(), True),
    ((10,), 2, 4, (4,), dict(stride=3, padding=2), False),
    ((11,), 4, 6, (3,), dict(dilation=2, padding="same", groups=2), True),
    ((8,), 2, 2, (4,), dict(padding="same", dilation=1), True),  # even kernel: odd extra after
    ((7,), 3, 2, (3,), dict(padding="full", stride=2), True),
    ((8,), 2, 3, (3,), dict(padding=((2, 0),), stride=2), True),
    ((8,), 2, 3, (5,), dict(padding="valid"), False),
    # 2D
    ((6, 7), 3, 4, (3, 3), dict(padding=1), True),
    ((7, 8), 4, 4, (3, 2), dict(stride=(2, 1), padding=(1, 0)), True),
    ((9, 9), 4, 8, (3, 3), dict(stride=2, dilation=2, padding=2, groups=4), False),
    ((8, 6), 4, 4, (3, 3), dict(groups=4, padding="same"), True),  # depthwise
    ((6, 6), 2, 3, (2, 3), dict(padding="full", dilation=(2, 1)), True),
    ((7, 6), 3, 2, (3, 3), dict(padding=((0, 2), (1, 0)), stride=(2, 3)), True),
    ((5, 5), 2, 3, (5, 5), dict(), True),  # kernel as large as the input
    ((6, 7), 3, 5, (1, 1), dict(stride=2), True),  # 1x1 strided
    ((7, 7), 6, 4, (3, 3), dict(padding=(2, 1), dilation=(1, 3), groups=2, stride=(1, 2)), False),
    ((6, 6), 4, 2, (2, 2), dict(padding=(3, 1)), True),  # padding wider than the kernel, stride 1
    ((6, 7), 4, 4, (3, 3), dict(padding=((3, 0), (0, 2)), dilation=(1, 2), groups=2), True),
    # 3D
    ((5, 6, 5), 2, 3, (3, 3, 3), dict(padding=1), True),
    ((6, 5, 7), 4, 4, (2, 3, 3), dict(stride=(2, 1, 2), dilation=(1, 2, 1), groups=2), True),
    ((5, 5, 5), 2, 2, (3, 2, 3), dict(padding=((1, 0), (0, 1), (2, 2))), False),
    ((4, 5, 4), 2, 2, (3, 3, 3), dict(padding="same"), True),
    # 1x1, stride 1, unpadded: the columns are the input itself (appended: GRAD_CASES index the list)
    ((6, 5), 4, 3, (1, 1), dict(), True),
]
IDS = [f"{len(c[0])}d-{i}-" + ",".join(f"{k}={v}" for k, v in c[4].items()) for i, c in enumerate(CASES)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_backward_match_torch_float64(case):
    """conv and conv_backward equal torch's conv and autograd (float64) for every padding form."""
    x, w, b, kw = make_conv_case(case)
    out = conv(x, w, b, **kw)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    t_out, t_dx, t_dw, t_db = torch_conv(x, w, b, grad=dout, **kw)
    assert_array_close(out, t_out, rtol=1e-10, atol=1e-10, what="conv forward")
    dx, dw, db = conv_backward(dout, x, w, **kw)
    assert_array_close(dx, t_dx, rtol=1e-10, atol=1e-10, what="dx")
    assert_array_close(dw, t_dw, rtol=1e-10, atol=1e-10, what="dw")
    assert_array_close(db, t_db, rtol=1e-10, atol=1e-10, what="db")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_preserved_and_close_to_torch(case):
    """float32 inputs give float32 outputs and gradients, within float32 rounding of torch."""
    x, w, b, kw = make_conv_case(case, dtype=np.float32)
    out = conv(x, w, b, **kw)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    t_out, t_dx, t_dw, t_db = torch_conv(x, w, b, grad=dout, **kw)
    assert_array_close(out, t_out, rtol=1e-5, atol=1e-5, what="conv forward float32")
    for got, ref, name in zip(conv_backward(dout, x, w, **kw), (t_dx, t_dw, t_db), ("dx", "dw", "db")):
        assert_array_close(got, ref, rtol=1e-5, atol=1e-4, what=f"{name} float32")


NAIVE_CASES = [c for c in CASES if np.prod(c[0]) <= 80]


@pytest.mark.parametrize("case", NAIVE_CASES, ids=[IDS[CASES.index(c)] for c in NAIVE_CASES])
@pytest.mark.parametrize("path", ["lean", "blocked"])
def test_fast_matches_naive_twin(case, path):
    """The im2col/GEMM paths (lean whole-batch, and blocked per image with every dx form) and the
    formula loops (eq. 9.7/9.8, 9.11, 9.13) agree; the public functions too."""
    import importlib

    from cnnmath._geometry import conv_geometry

    paths = importlib.import_module("cnnmath._conv_paths")
    x, w, b, kw = make_conv_case(case, n=2)
    ref = conv_naive(x, w, b, **kw)
    assert_array_close(conv(x, w, b, **kw), ref, rtol=1e-12, atol=1e-12, what="conv vs conv_naive")
    dout = np.random.default_rng(2).standard_normal(ref.shape)
    ref_dx, ref_dw, ref_db = conv_backward_naive(dout, x, w, **kw)
    for got, want, name in zip(conv_backward(dout, x, w, **kw), (ref_dx, ref_dw, ref_db), ("dx", "dw", "db")):
        assert_array_close(got, want, rtol=1e-12, atol=1e-12, what=f"{name} vs naive")
    geo = conv_geometry(x.shape, w.shape, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                        kw.get("groups", 1))
    dx_forms = ["lean"] if path == "lean" else ["blocked"] + (["flipped"] if geo.unit_stride else [])
    for dx_form in dx_forms:
        route = paths.Route(path, dx_form, path, block_bytes=1)  # blocked: one output row per block
        out = paths.forward(x, w, geo, np.float64, route) + (0 if b is None else b.reshape((-1,) + (1,) * geo.ndim))
        assert_array_close(out, ref, rtol=1e-12, atol=1e-12, what=f"forward {route} vs naive")
        assert_array_close(paths.input_grad(dout, w, geo, 2, np.float64, route), ref_dx, rtol=1e-12, atol=1e-12,
                           what=f"dx {route} vs naive")
        assert_array_close(paths.weight_grad(dout, x, geo, np.float64, route), ref_dw, rtol=1e-12, atol=1e-12,
                           what=f"dw {route} vs naive")


GRAD_CASES = [CASES[1], CASES[2], CASES[8], CASES[9], CASES[12], CASES[17]]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_conv_backward_numeric_gradient(case):
    """dx, dw, db agree with float64 centred differences of sum(conv * dout)."""
    x, w, b, kw = make_conv_case(case, n=2, seed=3)
    if b is None:
        b = np.zeros(w.shape[0])
    dout = np.random.default_rng(4).standard_normal(conv(x, w, b, **kw).shape)
    dx, dw, db = conv_backward(dout, x, w, **kw)
    assert_gradient(dx, lambda v: conv(v, w, b, **kw), x, dout, bound=1e-6, what="dx")
    assert_gradient(dw, lambda v: conv(x, v, b, **kw), w, dout, bound=1e-6, what="dw")
    assert_gradient(db, lambda v: conv(x, w, v, **kw), b, dout, bound=1e-6, what="db")


@pytest.mark.parametrize("ndim,fn", [(1, conv1d), (2, conv2d), (3, conv3d)])
def test_conv_nd_wrappers_and_unbatched(ndim, fn):
    """conv1d/2d/3d equal conv, accept torch's unbatched (C, *spatial) input, and check the rank."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3) + (6,) * ndim)
    w = rng.standard_normal((4, 3) + (3,) * ndim)
    b = rng.standard_normal(4)
    assert_array_close(fn(x, w, b, padding=1), conv(x, w, b, padding=1), what=f"conv{ndim}d")
    single = fn(x[0], w, b, padding=1)
    ref = TORCH_CONV[ndim](to_torch(x[0]), to_torch(w), to_torch(b), padding=1).numpy()
    assert_array_close(single, ref, rtol=1e-10, atol=1e-10, what="unbatched")
    with pytest.raises(ValueError, match="x must be a"):
        fn(rng.standard_normal((1,) * (ndim + 3)), rng.standard_normal((1,) * (ndim + 2)))
    with pytest.raises(ValueError, match="w must be a"):
        fn(x, rng.standard_normal((1,) * (ndim + 3)))
    other = {1: conv2d, 2: conv3d, 3: conv1d}[ndim]
    with pytest.raises(ValueError):
        other(x, w)


def test_integer_inputs_become_float64_and_are_not_mutated():
    """Integer arrays give float64; no input is written to (read-only inputs work)."""
    x = np.arange(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) % 7
    w = np.arange(3 * 2 * 3 * 3).reshape(3, 2, 3, 3) % 5 - 2
    b = np.array([1, -1, 2])
    out = conv(x, w, b, padding=1)
    assert out.dtype == np.float64
    ref = torch_conv(x.astype(float), w.astype(float), b.astype(float), padding=1)
    assert_array_close(out, ref, what="integer conv")
    xf, wf = x.astype(np.float32), w.astype(np.float32)
    for a in (xf, wf):
        a.flags.writeable = False
    x_copy, w_copy = xf.copy(), wf.copy()
    out = conv(xf, wf, None, padding=((1, 2), (0, 1)), stride=2)
    dout = np.ones_like(out)
    dout.flags.writeable = False
    conv_backward(dout, xf, wf, padding=((1, 2), (0, 1)), stride=2)
    np.testing.assert_array_equal(xf, x_copy)
    np.testing.assert_array_equal(wf, w_copy)
    assert np.all(dout == 1)


def test_bias_none_and_mixed_dtypes():
    """b=None adds nothing; float32 with float64 promotes to float64 (NumPy's rule); the bias
    takes the dtype of x and w (an integer bias keeps a float32 convolution float32)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3))
    out = conv(x, w)
    assert out.dtype == np.float64
    assert_array_close(out, conv(x, w, np.zeros(3)), what="zero bias")
    w32 = w.astype(np.float32)
    out = conv(x, w32, [1, 2, 3])
    assert out.dtype == np.float32
    assert_array_close(out, conv(x, w32) + np.array([1, 2, 3], np.float32)[:, None, None], what="int bias")


def test_non_contiguous_inputs():
    """Strided views (as slicing and transposing produce) give the same results as copies."""
    rng = np.random.default_rng(10)
    big = rng.standard_normal((3, 4, 12, 10))
    x = big[::2, :, ::2, :].transpose(0, 1, 3, 2)  # (2, 4, 10, 6), no unit strides
    w = rng.standard_normal((6, 4, 3, 3))[:, :, ::-1, :]
    xc, wc = np.ascontiguousarray(x), np.ascontiguousarray(w)
    for kw in (dict(), dict(padding=1, stride=2), dict(dilation=2)):
        assert_array_close(conv(x, w, **kw), conv(xc, wc, **kw), rtol=1e-12, atol=1e-12, what=f"forward {kw}")
        dout = rng.standard_normal(conv(xc, wc, **kw).shape)
        for got, ref in zip(conv_backward(dout, x, w, **kw), conv_backward(dout, xc, wc, **kw)):
            assert_array_close(got, ref, rtol=1e-12, atol=1e-12, what=f"backward {kw}")
    one = rng.standard_normal((5, 4, 1, 1))  # 1x1, stride 1, no padding: the no-copy path
    assert_array_close(conv(x, one), conv(xc, one), rtol=1e-12, atol=1e-12, what="1x1 on a strided view")


def test_batch_equals_images_one_by_one():
    """The per-image buffers are reused across the batch without leaking between images."""
    x, w, b, kw = make_conv_case(CASES[9], n=4)
    full = conv(x, w, b, **kw)
    dout = np.random.default_rng(7).standard_normal(full.shape)
    dx, dw, db = conv_backward(dout, x, w, **kw)
    singles = [conv_backward(dout[i:i + 1], x[i:i + 1], w, **kw) for i in range(4)]
    for i in range(4):
        assert_array_close(full[i:i + 1], conv(x[i:i + 1], w, b, **kw), rtol=1e-12, atol=1e-12, what="forward")
        assert_array_close(dx[i:i + 1], singles[i][0], rtol=1e-12, atol=1e-12, what="dx")
    assert_array_close(dw, sum(s[1] for s in singles), rtol=1e-12, atol=1e-12, what="dw")
    assert_array_close(db, sum(s[2] for s in singles), rtol=1e-12, atol=1e-12, what="db")


# ------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------

small = st.integers(min_value=1, max_value=3)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=small, d=small, shift=st.integers(1, 3), axis=st.integers(0, 1),
       pad=st.integers(0, 2))
def test_shift_equivariance_stride_one(seed, k, d, shift, axis, pad):
    """Translating the input translates the output (stride 1), away from borders and wrap-around."""
    rng = np.random.default_rng(seed)
    n = 12
    x = rng.standard_normal((1, 2, n, n))
    w = rng.standard_normal((2, 2, k, k))
    span = d * (k - 1)
    y = conv(x, w, padding=pad, dilation=d)
    y_shift = conv(np.roll(x, shift, axis=2 + axis), w, padding=pad, dilation=d)
    # output i of the shifted input reads inputs i - pad ... i - pad + span; all must be real, unwrapped
    lo, hi = pad + shift, n - 1 + pad - span
    if lo > hi:
        return
    idx = [slice(None)] * 4
    idx_ref = [slice(None)] * 4
    idx[2 + axis] = slice(lo, hi + 1)
    idx_ref[2 + axis] = slice(lo - shift, hi + 1 - shift)
    assert_array_close(y_shift[tuple(idx)], y[tuple(idx_ref)], rtol=1e-12, atol=1e-12, what="shifted output")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ndim=st.integers(1, 3), s=small, d=small, p=st.integers(0, 2),
       groups=st.sampled_from([1, 2]), a=st.floats(-3, 3), c=st.floats(-3, 3))
def test_linearity_in_x_and_w(seed, ndim, s, d, p, groups, a, c):
    """conv(a x1 + c x2, w) = a conv(x1, w) + c conv(x2, w), and the same in w."""
    rng = np.random.default_rng(seed)
    size = (7,) * ndim
    x1, x2 = rng.standard_normal((2, 1, 4) + size)
    w1, w2 = rng.standard_normal((2, 4, 4 // groups) + (2,) * ndim)
    kw = dict(stride=s, dilation=d, padding=p, groups=groups)
    lhs = conv(a * x1 + c * x2, w1, **kw)
    rhs = a * conv(x1, w1, **kw) + c * conv(x2, w1, **kw)
    assert_array_close(lhs, rhs, rtol=1e-9, atol=1e-9, what="linearity in x")
    lhs = conv(x1, a * w1 + c * w2, **kw)
    rhs = a * conv(x1, w1, **kw) + c * conv(x1, w2, **kw)
    assert_array_close(lhs, rhs, rtol=1e-9, atol=1e-9, what="linearity in w")


def test_output_size_equals_real_shape_over_grid():
    """cnnmath.output_size predicts conv's shape (and raises exactly when conv does) over a 1D grid."""
    rng = np.random.default_rng(8)
    checked = 0
    for n in range(1, 9):
        x = rng.standard_normal((1, 1, n))
        for k in range(1, 5):
            w = rng.standard_normal((1, 1, k))
            for s in (1, 2, 3):
                for d in (1, 2, 3):
                    for p in (0, 1, 2, "same", "full", "valid"):
                        if p == "same" and s > 1:
                            continue
                        try:
                            expected = cnnmath.output_size(n, k, stride=s, padding=p, dilation=d)
                        except ValueError:
                            with pytest.raises(ValueError):
                                conv(x, w, stride=s, padding=p, dilation=d)
                            continue
                        assert conv(x, w, stride=s, padding=p, dilation=d).shape == (1, 1, expected)
                        checked += 1
    assert checked > 500


@settings(max_examples=20, deadline=None)
@given(n=st.tuples(st.integers(1, 9), st.integers(1, 9)), k=st.tuples(small, small), s=st.tuples(small, small),
       d=st.tuples(small, small), p=st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_output_size_matches_torch_shape_2d(n, k, s, d, p):
    """output_size and conv's real shape agree with torch's over random 2D geometries."""
    x = np.zeros((1, 1) + n)
    w = np.zeros((1, 1) + k)
    try:
        expected = cnnmath.output_size(n, k, stride=s, padding=p, dilation=d)
    except ValueError:
        with pytest.raises(RuntimeError):
            F.conv2d(to_torch(x), to_torch(w), stride=s, padding=p, dilation=d)
        return
    assert conv(x, w, stride=s, padding=p, dilation=d).shape[2:] == expected
    assert tuple(F.conv2d(to_torch(x), to_torch(w), stride=s, padding=p, dilation=d).shape[2:]) == expected
