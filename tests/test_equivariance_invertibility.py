"""cnnmath.equivariance and cnnmath.invertibility against independent truth.

* circular max pooling and blur pooling against torch (circular padding, max_pool2d, a depthwise
  conv2d with the binomial kernel); equivariance_defect against a brute-force torch.roll search;
  a stride-s layer is exactly equivariant to shifts by multiples of s, and not to others;
* the Gaussian-process kernel of one random convolution: against torch's unfold (the window
  products), a torch Monte Carlo estimate over many random kernels, and SymPy's exact expectation
  over symbolic Gaussian weights (E[theta_m theta_n] = sigma^2 delta_mn);
* the convolution matrix against torch conv1d (flipped kernel, zero or circular padding), its rank
  against theory (full: n; valid: n - k + 1; circular: n minus the zeros of the DFT), the
  pseudo-inverse against numpy.linalg.pinv, the condition number against numpy.linalg.cond and
  its n^4 growth for the binomial blur; bad arguments are one-line errors naming the argument.
"""
import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import cnnmath as cm

RNG = np.random.default_rng(20261204)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("k,s", [(2, 1), (2, 2), (3, 1), (3, 2), (2, 4)])
def test_circular_max_pool_matches_torch(k, s):
    x = RNG.standard_normal((2, 3, 8, 12))
    ref = F.max_pool2d(F.pad(t(x), (0, k - 1, 0, k - 1), mode="circular"), k, s).numpy()
    np.testing.assert_allclose(cm.circular_max_pool(x, k, s), ref, atol=0)
    x1 = RNG.standard_normal((1, 2, 8)).astype(np.float32)
    got = cm.circular_max_pool(x1, k, s)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, F.max_pool1d(F.pad(t(x1), (0, k - 1), mode="circular"), k, s).numpy())


@pytest.mark.parametrize("s", [1, 2, 4])
def test_blur_pool_matches_torch(s):
    x = RNG.standard_normal((2, 3, 8, 8))
    dense = F.max_pool2d(F.pad(t(x), (0, 1, 0, 1), mode="circular"), 2, 1)
    b = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64) / 4
    kernel = torch.outer(b, b).expand(3, 1, 3, 3)
    ref = F.conv2d(F.pad(dense, (1, 1, 1, 1), mode="circular"), kernel, stride=s, groups=3).numpy()
    np.testing.assert_allclose(cm.blur_pool(x, s), ref, atol=1e-12)


def brute_defect(y, ys):
    y, ys = t(y), t(ys)
    return min(float((ys - torch.roll(y, (a, b), dims=(2, 3))).abs().max())
               for a in range(y.shape[2]) for b in range(y.shape[3]))


def test_equivariance_defect_and_where_stride_breaks_it():
    x = RNG.standard_normal((3, 2, 8, 8))
    pool = lambda v: cm.circular_max_pool(v, 2, 2)  # noqa: E731
    for m in range(5):
        got = cm.equivariance_defect(pool(x), pool(np.roll(x, m, axis=3)))
        assert got == pytest.approx(brute_defect(pool(x), pool(np.roll(x, m, axis=3))), abs=1e-15)
        assert (got == 0) == (m % 2 == 0), (m, got)      # exact only for multiples of the stride
    # stride 1: equivariant to every shift
    assert cm.equivariance_defect(cm.circular_max_pool(x, 3, 1),
                                  cm.circular_max_pool(np.roll(x, (1, 3), axis=(2, 3)), 3, 1)) == 0
    # the blur reduces the defect of a one-pixel shift on white noise (the chapter's claim)
    plain = np.mean([cm.equivariance_defect(pool(x[i:i + 1]), pool(np.roll(x[i:i + 1], 1, axis=3)))
                     for i in range(3)])
    blurred = np.mean([cm.equivariance_defect(cm.blur_pool(x[i:i + 1]), cm.blur_pool(np.roll(x[i:i + 1], 1, axis=3)))
                       for i in range(3)])
    assert blurred < 0.6 * plain


@pytest.mark.parametrize("padding", [0, 1])
def test_conv_gp_kernel_matches_the_window_products(padding):
    x, xq = RNG.standard_normal((3, 9)), RNG.standard_normal((3, 7))
    cols = F.unfold(t(x)[None, :, None], (1, 4), padding=(0, padding))[0]          # (3*4, out)
    cols_q = F.unfold(t(xq)[None, :, None], (1, 4), padding=(0, padding))[0]
    ref = 0.3 + 2.0 * (cols.T @ cols_q).numpy()
    np.testing.assert_allclose(cm.conv_gp_kernel(x, xq, 4, sigma_w2=2.0, sigma_b2=0.3, padding=padding), ref,
                               atol=1e-12)
    x2, xq2 = RNG.standard_normal((2, 5, 4)), RNG.standard_normal((2, 4, 6))
    got = cm.conv_gp_kernel(x2, xq2, (2, 3))
    assert got.shape == (4, 2, 3, 4)
    ref2 = (F.unfold(t(x2)[None], (2, 3))[0].T @ F.unfold(t(xq2)[None], (2, 3))[0]).numpy().reshape(4, 2, 3, 4)
    np.testing.assert_allclose(got, ref2, atol=1e-12)


def test_conv_gp_kernel_is_the_expectation_over_the_prior():
    # SymPy: the exact expectation over symbolic Gaussian weights and bias, one channel, 3 taps
    th, b = sp.symbols("th0:3"), sp.Symbol("b")
    xs, xqs = [1, -2, 3, 0, 5], [2, 1, -1, 4]
    f = [sum(xs[o + j] * th[j] for j in range(3)) + b for o in range(3)]
    fq = [sum(xqs[o + j] * th[j] for j in range(3)) + b for o in range(2)]
    sw2, sb2 = sp.Rational(3, 2), sp.Rational(1, 4)
    second = {v * v: (sb2 if v == b else sw2) for v in (*th, b)}
    exact = np.array([[float(sp.Poly(sp.expand(fo * fqo), *th, b).as_expr().subs(
        {v * w: 0 for v in (*th, b) for w in (*th, b) if v != w}).subs(second)) for fqo in fq] for fo in f])
    np.testing.assert_allclose(cm.conv_gp_kernel(np.array([xs], float), np.array([xqs], float), 3, 1.5, 0.25),
                               exact, atol=1e-12)
    # torch Monte Carlo over 40,000 random kernels agrees within the sampling error
    x, xq = RNG.standard_normal((2, 8)), RNG.standard_normal((2, 6))
    g = torch.Generator().manual_seed(5)
    w = torch.randn(40000, 2, 3, generator=g, dtype=torch.float64) * np.sqrt(0.5)
    bias = torch.randn(40000, generator=g, dtype=torch.float64) * np.sqrt(0.2)
    fx, fxq = F.conv1d(t(x)[None], w, bias)[0], F.conv1d(t(xq)[None], w, bias)[0]
    mc = (fx.T @ fxq / 40000).numpy()
    exact = cm.conv_gp_kernel(x, xq, 3, sigma_w2=0.5, sigma_b2=0.2)
    assert np.abs(mc - exact).max() < 0.1 * np.abs(exact).max() + 0.05
    np.testing.assert_allclose(cm.monte_carlo_gp_kernel(x, xq, w.numpy(), bias.numpy()), mc, atol=1e-10)


@pytest.mark.parametrize("mode", ["full", "same", "valid", "circular"])
@pytest.mark.parametrize("k,s", [(1, 1), (3, 1), (4, 2), (5, 3)])
def test_convolution_matrix_matches_torch(mode, k, s):
    n = 9
    w, x = RNG.standard_normal(k), RNG.standard_normal(n)
    flip = t(w[::-1].copy())[None, None]
    if mode == "circular":
        ref = F.conv1d(F.pad(t(x)[None, None], (k - 1, 0), mode="circular"), flip)[0, 0]
    else:
        full = F.conv1d(t(x)[None, None], flip, padding=k - 1)[0, 0]
        ref = {"full": full, "same": full[(k - 1) // 2:(k - 1) // 2 + n], "valid": full[k - 1:n]}[mode]
    a = cm.convolution_matrix(w, n, mode, stride=s)
    np.testing.assert_allclose(a @ x, ref.numpy()[::s], atol=1e-12)


def test_ranks_follow_the_theory():
    for _ in range(5):
        n, k = int(RNG.integers(4, 12)), int(RNG.integers(1, 4))
        w = RNG.standard_normal(k)
        assert np.linalg.matrix_rank(cm.convolution_matrix(w, n, "full")) == n
        assert np.linalg.matrix_rank(cm.convolution_matrix(w, n, "valid")) == n - k + 1
    for w, n in (([1.0, -1.0], 8), ([1.0, 1.0], 8), ([1.0, 1.0], 7), ([1.0, 0.0, 1.0], 8), ([1.0, 0.0, -1.0], 6)):
        zeros = sum(abs(complex(sum(c * sp.exp(-2 * sp.pi * sp.I * j * f / n) for j, c in enumerate(w)).evalf())) < 1e-9
                    for f in range(n))
        assert np.linalg.matrix_rank(cm.convolution_matrix(w, n, "circular")) == n - zeros, (w, n)
    # the chapter's three cases
    assert np.linalg.matrix_rank(cm.convolution_matrix([1.0, 2.0, 1.0], 8, "same", stride=2)) == 4


def test_pseudo_inverse_and_condition_numbers():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    for w in ([1.0, -1.0], [2.0, 1.0], [1.0, 0.0, -1.0], RNG.standard_normal(3)):
        a = cm.convolution_matrix(w, 8, "circular")
        np.testing.assert_allclose(cm.circular_deconvolve(a @ x, w), np.linalg.pinv(a) @ (a @ x), atol=1e-10)
    np.testing.assert_allclose(cm.circular_deconvolve(cm.convolution_matrix([1.0, -1.0], 8, "circular") @ x,
                                                      [1.0, -1.0]), x - x.mean(), atol=1e-12)
    for w, n, mode in (([2.0, 1.0], 8, "circular"), ([1.0, 2.0, 3.0], 7, "same"), ([1.0, 4.0, 6.0, 4.0, 1.0], 16, "full")):
        assert cm.condition_number(w, n, mode) == pytest.approx(np.linalg.cond(cm.convolution_matrix(w, n, mode)))
    assert cm.condition_number([1.0, 2.0, 1.0], 8, "valid") == np.inf          # fewer rows than inputs
    assert cm.condition_number([1.0, -1.0], 8, "circular") == np.inf          # DFT zero at frequency 0
    assert cm.condition_number([1.0, 2.0, 1.0], 8, "same", stride=2) == np.inf
    growth = cm.condition_number([1.0, 4.0, 6.0, 4.0, 1.0], 128) / cm.condition_number([1.0, 4.0, 6.0, 4.0, 1.0], 64)
    assert 12 < growth < 18                                                   # about 2^4: cond ~ n^4


@pytest.mark.parametrize("call,message", [
    (lambda: cm.convolution_matrix([1.0, 2.0], 0), "n must be a positive int, got 0"),
    (lambda: cm.convolution_matrix([1.0, 2.0], 4, "periodic"), "mode must be one of"),
    (lambda: cm.convolution_matrix([1.0, 2.0, 3.0], 2, "valid"), "len(w) <= n"),
    (lambda: cm.convolution_matrix([1.0], 4, stride=0), "stride must be a positive int"),
    (lambda: cm.circular_max_pool(np.zeros((1, 1, 5)), 2, 2), "multiple of stride 2"),
    (lambda: cm.conv_gp_kernel(np.zeros((2, 5)), np.zeros((3, 5)), 2), "x_prime must have the channels"),
    (lambda: cm.conv_gp_kernel(np.zeros((2, 5)), np.zeros((2, 5)), 2, sigma_w2=-1.0), "sigma_w2 must be a non-negative"),
    (lambda: cm.equivariance_defect(np.zeros((1, 1, 4)), np.zeros((1, 1, 5))), "y_shifted must have the shape"),
])
def test_bad_arguments_are_one_line_errors(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)
