"""Pooling: forward and backward against torch.nn.functional (float64), the naive twins,
centred-difference gradients, the seed's formula, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnmath
from cnnmath import (avg_pool, avg_pool_backward, avg_pool_backward_naive, avg_pool_naive, max_pool,
                     max_pool_backward, max_pool_backward_naive, max_pool_naive)
from tests.helpers import assert_array_close, assert_gradient, to_torch

TORCH_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
TORCH_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}

# (spatial shape, kernel_size, stride, padding)
CASES = [
    ((9,), 2, None, 0),
    ((10,), 3, 2, 1),
    ((11,), 4, 1, 2),
    ((7, 8), 2, None, 0),
    ((7, 8), 3, 1, 1),
    ((9, 6), (3, 2), (2, 1), (1, 0)),
    ((8, 9), (2, 4), (3, 2), (1, 2)),
    ((5, 6, 7), 2, None, 0),
    ((6, 5, 7), (3, 2, 3), (2, 1, 2), (1, 1, 0)),
]


def _torch_pool(kind, x, kernel_size, stride, padding, dout=None):
    fn = (TORCH_MAX if kind == "max" else TORCH_AVG)[x.ndim - 2]
    xt = to_torch(x).requires_grad_(True)
    y = fn(xt, kernel_size, stride, padding)
    if dout is None:
        return y.detach().numpy()
    y.backward(to_torch(dout))
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("spatial,kernel_size,stride,padding", CASES)
def test_forward_and_backward_match_torch(kind, spatial, kernel_size, stride, padding):
    """Forward and autograd backward equal torch's float64 pooling for 1D/2D/3D, stride, padding."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3) + spatial)
    fwd, bwd = (max_pool, max_pool_backward) if kind == "max" else (avg_pool, avg_pool_backward)
    y = fwd(x, kernel_size, stride, padding)
    dout = rng.standard_normal(y.shape)
    y_t, dx_t = _torch_pool(kind, x, kernel_size, stride, padding, dout)
    assert_array_close(y, y_t, what=f"{kind}_pool forward")
    dx = bwd(dout, x, kernel_size, stride, padding)
    assert_array_close(dx, dx_t, what=f"{kind}_pool backward")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("spatial,kernel_size,stride,padding", [CASES[1], CASES[5], CASES[8]])
def test_naive_twins_agree(kind, spatial, kernel_size, stride, padding):
    """The loop versions (forward and backward) agree with the vectorized ones."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2) + spatial)
    if kind == "max":
        ops = max_pool, max_pool_naive, max_pool_backward, max_pool_backward_naive
    else:
        ops = avg_pool, avg_pool_naive, avg_pool_backward, avg_pool_backward_naive
    y = ops[0](x, kernel_size, stride, padding)
    assert_array_close(ops[1](x, kernel_size, stride, padding), y, what="naive forward")
    dout = rng.standard_normal(y.shape)
    assert_array_close(ops[3](dout, x, kernel_size, stride, padding), ops[2](dout, x, kernel_size, stride, padding),
                       what="naive backward")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("spatial,kernel_size,stride,padding", [CASES[2], CASES[4], CASES[7]])
def test_numeric_gradient(kind, spatial, kernel_size, stride, padding):
    """Backward matches float64 centred differences of sum(pool(x) * dout) (overlapping windows too)."""
    rng = np.random.default_rng(2)
    # distinct values spaced well apart so that eps never changes an arg-max
    x = rng.permutation(np.prod((1, 2) + spatial)).reshape((1, 2) + spatial) * 0.1
    fwd, bwd = (max_pool, max_pool_backward) if kind == "max" else (avg_pool, avg_pool_backward)
    y = fwd(x, kernel_size, stride, padding)
    dout = rng.standard_normal(y.shape)
    assert_gradient(bwd(dout, x, kernel_size, stride, padding),
                    lambda v: fwd(v, kernel_size, stride, padding), x, dout, bound=1e-6,
                    what=f"{kind}_pool dx")


@st.composite
def pool_configs(draw):
    ndim = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    s = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    n = tuple(draw(st.integers(max(1, ki - 2 * pi), 8)) for ki, pi in zip(k, p))
    stride = None if draw(st.booleans()) else s
    return n, k, stride, p, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(pool_configs())
def test_random_configurations_match_torch(config):
    """Random dims / kernel / stride (or default) / legal padding: forward and backward equal torch."""
    spatial, kernel_size, stride, padding, seed = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2) + spatial)
    for kind, fwd, bwd in (("max", max_pool, max_pool_backward), ("avg", avg_pool, avg_pool_backward)):
        y = fwd(x, kernel_size, stride, padding)
        dout = rng.standard_normal(y.shape)
        if kind == "avg" and len(spatial) == 3 and any(n < k for n, k in zip(spatial, kernel_size)):
            # torch's avg_pool3d (only it) refuses an input smaller than the kernel even when the
            # padded input is large enough; avg_pool1d/2d and max_pool3d accept it. Use the loop twin.
            assert_array_close(y, avg_pool_naive(x, kernel_size, stride, padding), what="avg3d small input")
            continue
        y_t, dx_t = _torch_pool(kind, x, kernel_size, stride, padding, dout)
        assert_array_close(y, y_t, what=f"{kind} forward")
        assert_array_close(bwd(dout, x, kernel_size, stride, padding), dx_t, what=f"{kind} backward")


def test_input_smaller_than_kernel_but_padded_enough():
    """n < k <= n + 2p is legal (as torch's 1-D/2-D pooling and max_pool3d agree)."""
    x = np.array([[[3.0]]])
    assert_array_close(max_pool(x, 2, 1, 1), _torch_pool("max", x, 2, 1, 1), what="max")
    assert_array_close(avg_pool(x, 2, 1, 1), _torch_pool("avg", x, 2, 1, 1), what="avg")
    assert_array_close(avg_pool(x, 2, 1, 1), np.array([[[1.5, 1.5]]]), what="avg counts the padding")


def test_four_spatial_dims_against_naive():
    """Any number of spatial dims: a 4-D pooling (beyond torch) agrees with the loop version."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 4, 5, 3, 4))
    for fast, naive in ((max_pool, max_pool_naive), (avg_pool, avg_pool_naive)):
        assert_array_close(fast(x, (2, 3, 2, 2), (2, 1, 1, 2), (1, 1, 0, 1)),
                           naive(x, (2, 3, 2, 2), (2, 1, 1, 2), (1, 1, 0, 1)), what="4-D pooling")
    y = max_pool(x, 2, 1)
    dout = rng.standard_normal(y.shape)
    assert_array_close(max_pool_backward(dout, x, 2, 1), max_pool_backward_naive(dout, x, 2, 1), what="4-D grad")


def test_seed_formula_pool_size_p():
    """Seed 001: Y[i,j,c] = max / mean over X[p i + m, p j + n, c], m, n in [0, p) (channels-last there)."""
    rng = np.random.default_rng(3)
    p = 3
    X = rng.standard_normal((9, 12, 4))  # H, W, C as in the seed
    Ymax = np.empty((3, 4, 4))
    Yavg = np.empty((3, 4, 4))
    for i in range(3):
        for j in range(4):
            for c in range(4):
                block = [X[p * i + m, p * j + n, c] for m in range(p) for n in range(p)]
                Ymax[i, j, c] = max(block)
                Yavg[i, j, c] = sum(block) / p**2
    x = X.transpose(2, 0, 1)[None]  # (1, C, H, W)
    assert_array_close(max_pool(x, p)[0].transpose(1, 2, 0), Ymax, what="seed max pool")
    assert_array_close(avg_pool(x, p)[0].transpose(1, 2, 0), Yavg, what="seed avg pool")


def test_ties_route_to_first_max_like_torch():
    """On ties the whole gradient goes to the first maximum in row-major window order."""
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [2.0, 2.0, 2.0]]]])
    dout = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    dx = max_pool_backward(dout, x, 2, 1)
    _, dx_t = _torch_pool("max", x, 2, 1, 0, dout)
    assert_array_close(dx, dx_t, what="ties")
    assert dx[0, 0, 0, 0] == 1.0 and dx[0, 0, 1, 2] == 1010.0 and dx[0, 0, 2, 0] == 100.0


def test_padding_is_minus_inf_for_max_and_counted_zero_for_avg():
    """Max pooling never selects padding; average pooling divides by prod(kernel_size)."""
    x = -np.ones((1, 1, 3))
    assert_array_close(max_pool(x, 2, 2, 1), np.array([[[-1.0, -1.0]]]), what="max with -inf pad")
    assert_array_close(avg_pool(x, 2, 2, 1), np.array([[[-0.5, -1.0]]]), what="avg counts pad")


def test_dtype_and_inputs_untouched():
    """float32 stays float32, ints become float64, and the input is not mutated."""
    x32 = np.random.default_rng(4).standard_normal((1, 2, 6, 6)).astype(np.float32)
    keep = x32.copy()
    assert max_pool(x32, 2).dtype == np.float32
    assert avg_pool(x32, 2).dtype == np.float32
    y = max_pool(x32, 3, 1, 1)
    assert max_pool_backward(np.ones_like(y), x32, 3, 1, 1).dtype == np.float32
    assert avg_pool_backward(np.ones_like(y), x32, 3, 1, 1).dtype == np.float32
    np.testing.assert_array_equal(x32, keep)
    xi = np.arange(16).reshape(1, 1, 4, 4)
    assert max_pool(xi, 2).dtype == np.float64
    assert_array_close(avg_pool(xi, 2), np.array([[[[2.5, 4.5], [10.5, 12.5]]]]), what="int input")


def test_top_level_exports():
    """The public names live at the top level of cnnmath."""
    for name in ["max_pool", "avg_pool", "max_pool_backward", "avg_pool_backward", "max_pool_naive",
                 "avg_pool_naive"]:
        assert getattr(cnnmath, name) is getattr(cnnmath.pooling, name)


@pytest.mark.parametrize("call,exc,match", [
    (lambda x: max_pool(x, 2, 2, 2), ValueError, r"padding must be at most half of kernel_size.*got padding=2"),
    (lambda x: avg_pool(x, (3, 2), 1, (1, 2)), ValueError, r"padding.*\(1, 2\)"),
    (lambda x: max_pool(x, 2, 0), ValueError, r"stride must be a positive int, got 0"),
    (lambda x: max_pool(x, 0), ValueError, r"kernel_size must be a positive int, got 0"),
    (lambda x: max_pool(x, 2, 1, -1), ValueError, r"padding must be a non-negative int, got -1"),
    (lambda x: max_pool(x, 2, 1, "same"), TypeError, r"padding.*'same'"),
    (lambda x: max_pool(x, 9), ValueError, r"kernel_size=\(9, 9\).*larger than the padded input"),
    (lambda x: max_pool(x, (2, 2, 2)), ValueError, r"kernel_size must be an int or a tuple of 2 ints"),
    (lambda x: max_pool(x[0, 0], 2), ValueError, r"x must have at least 3 dimensions"),
    (lambda x: avg_pool(x.astype(str), 2), TypeError, r"x must be a real numeric array"),
    (lambda x: max_pool_backward(np.ones((1, 2, 3, 3)), x, 2), ValueError, r"dout must have .*\(1, 2, 2, 2\)"),
])
def test_errors_name_argument_and_value(call, exc, match):
    """Bad arguments raise clear errors naming the argument and its value."""
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(exc, match=match):
        call(x)
