"""Locally connected layer (eq. 9.9) and tiled convolution (eq. 9.10): naive twins, the limits
t = 1 (convolution, checked against torch) and t = out (locally connected), shared weights,
centred-difference gradients, parameter counts and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F

from cnnmath import (conv, locally_connected, locally_connected_backward, locally_connected_naive,
                     locally_connected_params, output_size, tile_kernels, tiled_conv, tiled_conv_backward,
                     tiled_conv_naive, tiled_conv_params)
from tests.helpers import assert_array_close, assert_gradient, to_torch

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

# (spatial, kernel, stride, padding, dilation)
CASES = [
    ((9,), (3,), 1, 0, 1),
    ((11,), (2,), 2, 1, 2),
    ((6, 7), (3, 2), 1, 1, 1),
    ((8, 7), (3, 3), (2, 1), ((1, 0), (2, 1)), (1, 2)),
    ((5, 4, 5), (2, 2, 3), 1, (0, 1, 1), 1),
]


def _away_from_zero(rng, shape):
    """Values with |v| in [0.5, 1.5]: products never get tiny, so the element-wise relative
    error of a centred difference (absolute noise ~1e-10) stays far below the bounds."""
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def _data(case, c_in=2, c_out=3, n=2, tile=None, seed=0):
    spatial, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(seed)
    out = output_size(spatial, kernel, stride, padding, dilation)
    x = _away_from_zero(rng, (n, c_in) + spatial)
    w = _away_from_zero(rng, (c_out,) + out + (c_in,) + kernel)
    kt = None if tile is None else _away_from_zero(rng, (c_out,) + tile + (c_in,) + kernel)
    b = _away_from_zero(rng, c_out)
    return x, w, kt, b, out, dict(stride=stride, padding=padding, dilation=dilation)


def _torch_conv(x, kernel, b, stride, padding, dilation):
    if isinstance(padding, tuple) and any(isinstance(p, tuple) for p in padding):
        pads = [v for pb_pa in reversed(padding) for v in (pb_pa if isinstance(pb_pa, tuple) else (pb_pa, pb_pa))]
        xt, padding = F.pad(to_torch(x), pads), 0
    else:
        xt = to_torch(x)
    return TORCH_CONV[x.ndim - 2](xt, to_torch(kernel), to_torch(b), stride, padding, dilation).numpy()


@pytest.mark.parametrize("case", CASES)
def test_locally_connected_matches_naive(case):
    """Fast locally connected layer == eq. 9.9 written as loops (1D/2D/3D, stride, padding, dilation, bias)."""
    x, w, _, b, _, kw = _data(case)
    assert_array_close(locally_connected(x, w, b, **kw), locally_connected_naive(x, w, b, **kw),
                       what="locally_connected vs naive")


@pytest.mark.parametrize("case", CASES)
def test_shared_weights_equal_convolution(case):
    """Locally connected with every position's kernel equal is the convolution (torch)."""
    x, w, _, b, out, kw = _data(case)
    ndim = len(out)
    kernel = w[(slice(None),) + (0,) * ndim]  # (C_out, C_in, *k)
    shared = np.broadcast_to(np.expand_dims(kernel, tuple(range(1, 1 + ndim))), w.shape)
    z = locally_connected(x, shared, b, **kw)
    assert_array_close(z, _torch_conv(x, kernel, b, **kw), what="shared weights vs torch conv")
    assert_array_close(z, conv(x, kernel, b, **kw), what="shared weights vs cnnmath.conv")


@pytest.mark.parametrize("case", CASES)
def test_tiled_limits(case):
    """tiled with t = 1 is torch's convolution; with t = out it is locally connected; naive twin agrees."""
    spatial, kernel, *_ = case
    nd = len(spatial)
    x, w, kt, b, out, kw = _data(case, tile=(1,) * nd)
    single = kt.reshape(kt.shape[:1] + kt.shape[1 + nd:])  # (C_out, C_in, *k)
    assert_array_close(tiled_conv(x, kt, b, **kw), _torch_conv(x, single, b, **kw), what="t=1 vs torch conv")
    assert_array_close(tiled_conv(x, w, b, **kw), locally_connected(x, w, b, **kw), what="t=out vs locally connected")
    _, _, kt2, _, _, _ = _data(case, tile=(2,) * nd, seed=1)
    assert_array_close(tiled_conv(x, kt2, b, **kw), tiled_conv_naive(x, kt2, b, **kw), what="tiled vs naive")


def test_tiled_uses_o_mod_t():
    """Eq. 9.10 by hand (1-D, t = 2): even outputs use kernel 0, odd outputs kernel 1."""
    x = np.arange(6.0)[None, None]
    k = np.array([[[[1.0, 0.0]], [[0.0, 10.0]]]])  # (C_out=1, t=2, C_in=1, k=2)
    z = tiled_conv(x, k)
    assert_array_close(z, np.array([[[0.0, 20.0, 2.0, 40.0, 4.0]]]), what="o mod t")
    assert_array_close(tile_kernels(k, (5,))[0, :, 0], np.array([[1, 0], [0, 10], [1, 0], [0, 10], [1, 0.0]]),
                       what="tile_kernels")


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[4]])
def test_locally_connected_gradients(case):
    """dx, dw, db match float64 centred differences with an upstream gradient."""
    x, w, _, b, out, kw = _data(case, c_in=2, c_out=2, n=1, seed=3)
    dout = _away_from_zero(np.random.default_rng(4), (1, 2) + out)
    dx, dw, db = locally_connected_backward(dout, x, w, **kw)
    assert_gradient(dx, lambda v: locally_connected(v, w, b, **kw), x, dout, what="dx")
    assert_gradient(dw, lambda v: locally_connected(x, v, b, **kw), w, dout, what="dw")
    assert_gradient(db, lambda v: locally_connected(x, w, v, **kw), b, dout, what="db")


@pytest.mark.parametrize("case,tile", [(CASES[1], (3,)), (CASES[3], (2, 3)), (CASES[2], (1, 4))])
def test_tiled_gradients(case, tile):
    """Tiled backward (shared kernels sum their positions' gradients) vs centred differences."""
    x, _, k, b, out, kw = _data(case, c_in=2, c_out=2, n=1, tile=tile, seed=5)
    dout = _away_from_zero(np.random.default_rng(6), (1, 2) + out)
    dx, dk, db = tiled_conv_backward(dout, x, k, **kw)
    assert dk.shape == k.shape
    assert_gradient(dx, lambda v: tiled_conv(v, k, b, **kw), x, dout, what="dx")
    assert_gradient(dk, lambda v: tiled_conv(x, v, b, **kw), k, dout, what="dk")
    assert_gradient(db, lambda v: tiled_conv(x, k, v, **kw), b, dout, what="db")


def test_tiled_backward_t1_matches_torch_conv_grads():
    """With t = 1 the tiled gradients are torch's convolution gradients."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 6))
    k = rng.standard_normal((4, 1, 1, 3, 3, 2))
    b = rng.standard_normal(4)
    y = tiled_conv(x, k, b, stride=(2, 1), padding=1)
    dout = rng.standard_normal(y.shape)
    xt, kt, bt = (to_torch(a).requires_grad_(True) for a in (x, k[:, 0, 0], b))
    F.conv2d(xt, kt, bt, (2, 1), 1).backward(to_torch(dout))
    dx, dk, db = tiled_conv_backward(dout, x, k, stride=(2, 1), padding=1)
    assert_array_close(dx, xt.grad.numpy(), what="dx")
    assert_array_close(dk[:, 0, 0], kt.grad.numpy(), what="dk")
    assert_array_close(db, bt.grad.numpy(), what="db")


def test_dtype_and_no_mutation():
    """float32 stays float32 through forward and backward; inputs are not mutated."""
    x, w, k, b, out, kw = _data(CASES[2], tile=(2, 2))
    x, w, k, b = (a.astype(np.float32) for a in (x, w, k, b))
    keep = [a.copy() for a in (x, w, k, b)]
    assert locally_connected(x, w, b, **kw).dtype == np.float32
    z = tiled_conv(x, k, b, **kw)
    assert z.dtype == np.float32
    assert all(g.dtype == np.float32 for g in tiled_conv_backward(np.ones_like(z), x, k, **kw))
    for a, c in zip((x, w, k, b), keep):
        np.testing.assert_array_equal(a, c)


def test_parameter_counts():
    """Counts follow the weight layouts; t = 1 gives the convolution count (seed 001: k^2 C_in C_out + C_out)."""
    assert tiled_conv_params(3, 8, 3, 1) == 3 * 3 * 3 * 8 + 8 == 224
    assert tiled_conv_params(3, 8, (3, 3), (2, 2)) == 8 * 4 * 3 * 9 + 8
    assert locally_connected_params(3, 8, 3, (14, 14), bias=False) == 8 * 196 * 3 * 9
    assert locally_connected_params(3, 8, 3, 14, ndim=1) == 8 * 14 * 3 * 3 + 8
    assert tiled_conv_params(4, 2, (3, 3, 3), 2) == 2 * 8 * 4 * 27 + 2
    x, w, k, b, out, kw = _data(CASES[3], tile=(2, 2))
    assert locally_connected_params(2, 3, (3, 3), out) == w.size + b.size
    assert tiled_conv_params(2, 3, (3, 3), (2, 2)) == k.size + b.size
    with pytest.raises(ValueError, match=r"c_in must be a positive int.*got 0"):
        tiled_conv_params(0, 8, 3, 1)


def test_errors():
    """Mismatched shapes raise errors naming the argument and value."""
    x, w, k, b, out, kw = _data(CASES[2], tile=(2, 2))
    with pytest.raises(ValueError, match=r"w must hold one kernel per output position.*\(6, 8\)"):
        locally_connected(x, w[:, :-1], b, **kw)
    with pytest.raises(ValueError, match=r"channels.*x has 3 channels.*C_in=2"):
        locally_connected(np.concatenate([x, x[:, :1]], axis=1), w, b, **kw)
    with pytest.raises(ValueError, match=r"w must be a 6-D array"):
        locally_connected(x, w[0], b, **kw)
    with pytest.raises(ValueError, match=r"b must have shape \(C_out,\) = \(3,\), got \(2,\)"):
        tiled_conv(x, k, b[:2], **kw)
    with pytest.raises(ValueError, match=r"dout must have the output's shape"):
        tiled_conv_backward(np.ones((2, 3, 1, 1)), x, k, **kw)
    with pytest.raises(ValueError, match=r"stride must be a positive int, got 0"):
        tiled_conv(x, k, b, stride=0)
    with pytest.raises(ValueError, match=r"larger than the padded input"):
        tiled_conv(x[..., :1, :1], k, b)
