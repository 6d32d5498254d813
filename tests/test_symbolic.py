"""cnnmath.symbolic: the SymPy derivations agree with the numeric library (conv, conv_backward,
output_size, receptive_field, the counts) and with the seeds' numbers."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

import cnnmath as cm
from cnnmath import symbolic as S
from tests.helpers import per_test_rng

RNG = np.random.default_rng(2)

_fresh_rng = per_test_rng(globals())  # each test draws from its own generator, seeded by its name


def _numeric(exprs, symbols, values):
    """Evaluate an object array of expressions by lambdify, substituting ``values`` for ``symbols``."""
    exprs = np.asarray(exprs, dtype=object)
    f = sp.lambdify(list(np.ravel(symbols)), [sp.sympify(e) for e in exprs.ravel()], "numpy")
    return np.array(f(*np.ravel(values)), dtype=np.float64).reshape(exprs.shape)


CONV_CASES = [
    # (size, kernel, stride, padding, dilation)
    ((6,), (3,), 1, 0, 1),
    ((7,), (2,), 2, 1, 1),
    ((9,), (3,), 2, ((2, 1),), 2),
    ((5,), (3,), 1, "same", 1),
    ((4,), (2,), 1, "full", 1),
    ((5, 4), (2, 3), (2, 1), 1, 1),
    ((6, 6), (3, 2), 1, ((0, 1), (2, 0)), (1, 2)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_sum_equals_cnnmath_conv(case):
    """Substituting random numbers into the symbolic outputs gives cnnmath.conv's result."""
    size, k, s, p, d = case
    y, x, w = S.conv_sum(size, k, s, p, d)
    xv = RNG.normal(size=size)
    wv = RNG.normal(size=k)
    got = _numeric(y, np.concatenate([x.ravel(), w.ravel()]), np.concatenate([xv.ravel(), wv.ravel()]))
    expected = cm.conv(xv[None, None], wv[None, None], None, s, p, d)[0, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert y.shape == cm.output_size(size, k, s, p, d)


def test_multichannel_conv_sum_equals_cnnmath_conv():
    """Seed 004 eq. 9.7/9.8 with channels: y[l, o] = sum_c sum_j x_p[c, o s + j d] w[l, c, j]."""
    y, x, w = S.conv_sum((5, 4), (2, 2), stride=(2, 1), padding=1, in_channels=2, out_channels=3)
    assert (y.shape, x.shape, w.shape) == ((3, 3, 5), (2, 5, 4), (3, 2, 2, 2))
    xv, wv = RNG.normal(size=x.shape), RNG.normal(size=w.shape)
    got = _numeric(y, np.concatenate([x.ravel(), w.ravel()]), np.concatenate([xv.ravel(), wv.ravel()]))
    np.testing.assert_allclose(got, cm.conv(xv[None], wv, None, (2, 1), 1)[0], rtol=1e-12, atol=1e-12)


def test_conv2d_sum_reproduces_seed_003_Z():
    """Seed 003 step 1: the 3x3 kernel K on the 4x4 input X gives Z = [[4, 0], [4, 3]]."""
    X = [[2, 0, 1, 2], [1, 1, 0, 1], [0, 2, 1, 0], [1, 0, 2, 1]]
    K = [[1, -1, 0], [0, 1, -1], [1, 0, 1]]
    Y, Xs, Ks = S.conv2d_sum(4, 4, 3, 3)
    subs = {Xs[i, j]: X[i][j] for i in range(4) for j in range(4)}
    subs.update({Ks[i, j]: K[i][j] for i in range(3) for j in range(3)})
    assert Y.subs(subs) == sp.Matrix([[4, 0], [4, 3]])
    # Each entry is the seed's sum of nine products.
    assert all(len(sp.Add.make_args(e)) == 9 for e in Y)


def test_conv1d_sum_formula_expands_to_conv1d_sum():
    eq = S.conv1d_sum_formula()
    i, k, s, d = [next(a for a in eq.free_symbols if a.name == n) for n in ("i", "k", "s", "d")]
    expanded = eq.rhs.subs({k: 3, s: 2, d: 1}).doit()
    y, x, w = S.conv1d_sum(9, 3, stride=2)
    xb, wb = sp.IndexedBase("x"), sp.IndexedBase("w")
    for o in range(len(y)):
        e = expanded.subs(i, o).subs({xb[n]: x[n] for n in range(9)}).subs({wb[j]: w[j] for j in range(3)})
        assert sp.expand(e - y[o]) == 0


def test_output_size_expr_equals_output_size_over_a_grid():
    """The symbolic floor formula == cnnmath.output_size wherever the kernel fits."""
    checked = 0
    for n, k, s, p, d in itertools.product(range(1, 9), range(1, 5), range(1, 4), range(0, 3), range(1, 3)):
        if d * (k - 1) + 1 > n + 2 * p:
            with pytest.raises(ValueError):
                cm.output_size(n, k, s, p, d)
            continue
        assert S.output_size_value(n, k, s, p, d) == cm.output_size(n, k, s, p, d), (n, k, s, p, d)
        checked += 1
    assert checked > 400


def test_output_size_seed_form_is_the_d_equals_1_case():
    sym = S.output_size_symbols()
    general = S.output_size_expr().subs(sym["d"], 1)
    assert sp.simplify(general - S.output_size_expr(seed_form=True)) == 0
    assert S.output_size_value(16, 3, 1, 1) == 16 and S.output_size_value(16, 2, 2) == 8  # seed 003


GRAD_CASES = [
    # (size, kernel, stride, padding, dilation, in_channels, out_channels)
    ((5,), (2,), 1, 0, 1, None, None),
    ((7,), (3,), 2, 0, 1, None, None),
    ((8,), (2,), 3, 1, 2, None, None),
    ((6,), (3,), 1, "same", 1, None, None),
    ((4, 5), (2, 2), (2, 1), 1, 1, None, None),
    ((5, 5), (3, 2), 2, ((1, 0), (0, 1)), (1, 2), None, None),
    ((6,), (3,), 2, 1, 1, 2, 3),
    ((4, 4), (2, 2), 1, 0, 1, 2, 2),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[str(i) for i in range(len(GRAD_CASES))])
def test_diff_gradients_equal_seed_004_closed_forms(case):
    """sympy.diff of L = sum g y equals eq. 9.13 (flipped-kernel full convolution) and eq. 9.11."""
    r = S.conv_gradients(*case)
    for a, b in zip(r["dx"].ravel(), r["dx_formula"].ravel()):
        assert sp.expand(a - b) == 0, (a, b)
    for a, b in zip(r["dw"].ravel(), r["dw_formula"].ravel()):
        assert sp.expand(a - b) == 0, (a, b)


@pytest.mark.parametrize("case", GRAD_CASES, ids=[str(i) for i in range(len(GRAD_CASES))])
def test_derived_gradients_equal_conv_backward_on_random_numbers(case):
    """The symbolic dL/dx and dL/dw, evaluated on random x, w, g, equal cnnmath.conv_backward."""
    size, k, s, p, d, c_in, c_out = case
    r = S.conv_gradients(size, k, s, p, d, c_in, c_out)
    xv, wv, gv = RNG.normal(size=r["x"].shape), RNG.normal(size=r["w"].shape), RNG.normal(size=r["g"].shape)
    syms = np.concatenate([r["x"].ravel(), r["w"].ravel(), r["g"].ravel()])
    vals = np.concatenate([xv.ravel(), wv.ravel(), gv.ravel()])
    if c_in is None:  # single channel: add the channel axes the library expects
        X, W, G = xv[None, None], wv[None, None], gv[None, None]
    else:
        X, W, G = xv[None], wv, gv[None]
    dx, dw, db = cm.conv_backward(G, X, W, s, p, d)
    np.testing.assert_allclose(_numeric(r["dx"], syms, vals), dx.reshape(xv.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_numeric(r["dw"], syms, vals), dw.reshape(wv.shape), rtol=1e-12, atol=1e-12)
    # eq. 9.11 literally: for each (l, c), dw is the correlation of the padded input channel c
    # with g[l], g's taps spaced by the stride (a convolution with dilation = stride).
    pads = r["padding"]
    for l in range(W.shape[0]):
        for c in range(W.shape[1]):
            dw_corr = cm.conv(X[:, c:c + 1], G[:, l:l + 1], None, stride=r["dilation"], padding=pads,
                              dilation=r["stride"])[0, 0]
            np.testing.assert_allclose(dw_corr[tuple(slice(0, n) for n in k)], dw[l, c], rtol=1e-12, atol=1e-12)


def test_true_convolution_commutes_and_cross_correlation_does_not():
    """Seed 004 section 1: f * g - g * f == 0 identically; f ⋆ g - g ⋆ f is not."""
    assert all(v == 0 for v in S.commutator(4, 3).values())
    diffs = S.commutator(3, 2, op="cross_correlation")
    assert any(v != 0 for v in diffs.values())
    ex = S.cross_correlation_counterexample()
    assert ex["f_corr_g"] != ex["g_corr_f"] and ex["f_conv_g"] == ex["g_conv_f"]


def test_discrete_sums_equal_cnnmath_signal_functions():
    """discrete_convolution == cm.convolve(full); the correlation's t = -(m-1)..n-1 == cm.cross_correlate(full)."""
    fv, gv = RNG.normal(size=5), RNG.normal(size=3)
    f, g = list(S.symbol_array("f", (5,))), list(S.symbol_array("g", (3,)))
    subs = dict(zip(f + g, list(fv) + list(gv)))
    conv = np.array([float(e.subs(subs)) for e in S.discrete_convolution(f, g)])
    np.testing.assert_allclose(conv, cm.convolve(fv, gv, "full"), rtol=1e-12)
    corr = S.discrete_cross_correlation(f, g)
    np.testing.assert_allclose([float(corr[t].subs(subs)) for t in sorted(corr)], cm.cross_correlate(fv, gv, "full"),
                               rtol=1e-12)
    ex = S.cross_correlation_counterexample()
    f_num, g_num = np.array(ex["f"], float), np.array(ex["g"], float)
    np.testing.assert_array_equal(cm.cross_correlate(f_num, g_num, "full"),
                                  [float(ex["f_corr_g"][t]) for t in sorted(ex["f_corr_g"])])
    np.testing.assert_array_equal(cm.cross_correlate(g_num, f_num, "full"),
                                  [float(ex["g_corr_f"][t]) for t in sorted(ex["g_corr_f"])])


def test_box_convolved_with_box_is_the_triangle():
    """Seed 002's integral on two unit boxes: SymPy's result equals the triangle everywhere sampled,
    and a fine Riemann sum (cnnmath.convolve on samples) approximates it."""
    result, t = S.box_convolution()
    tri = S.triangle(t)
    for v in [sp.Rational(n, 8) for n in range(-8, 25)]:
        assert sp.simplify(result.subs(t, v) - tri.subs(t, v)) == 0, v
    h = 1e-3
    samples = np.ones(int(round(1 / h)) + 1)
    approx = cm.convolve(samples, samples, "full") * h
    grid = np.arange(approx.size) * h
    exact = np.maximum(0.0, 1.0 - np.abs(grid - 1.0))
    assert np.max(np.abs(approx - exact)) < 5e-3


def test_receptive_field_closed_form_equals_recurrence_and_library():
    """1 + sum (k_l - 1) prod s_i == the recursion, symbolically; both == cm.receptive_field."""
    for L in (1, 2, 4):
        for dil in (False, True):
            expr, (k, s, d) = S.receptive_field_expr(L, dilation=dil)
            rs, js, _ = S.receptive_field_recurrence(L, dilation=dil)
            assert sp.expand(expr - rs[-1]) == 0
    expr, (k, s, d) = S.receptive_field_expr(4, dilation=True)
    for _ in range(20):
        kv, sv, dv = RNG.integers(1, 6, 4), RNG.integers(1, 4, 4), RNG.integers(1, 3, 4)
        subs = {**dict(zip(k, kv)), **dict(zip(s, sv)), **dict(zip(d, dv))}
        layers = [(int(a), int(b), int(c)) for a, b, c in zip(kv, sv, dv)]
        assert int(expr.subs(subs)) == cm.receptive_field(layers)
    expr3, (k3, s3, _) = S.receptive_field_expr(3)
    assert expr3.subs({**dict(zip(k3, [3, 3, 3])), **dict(zip(s3, [1, 1, 1]))}) == 7  # VGG, seed 001


def test_parameter_expressions_equal_library_counts():
    """k^2 C_in C_out + C_out, the separable count and the (2+1)D counts against cnnmath over a grid."""
    conv, (ci, co, k) = S.conv_params_expr()
    sep, _ = S.depthwise_separable_params_expr(bias=True)
    sep0, _ = S.depthwise_separable_params_expr(bias=False)
    p3, p21, (ci2, co2, k2, t2, m2) = S.conv2plus1d_params_expr(bias=True)
    for a, b, kk in itertools.product([1, 3, 8], [2, 16], [1, 3, 5]):
        sub = {ci: a, co: b, k: kk}
        assert conv.subs(sub) == cm.conv_params(a, b, kk)
        assert sep.subs(sub) == cm.depthwise_separable_params(a, b, kk)
        assert sep0.subs(sub) == cm.depthwise_separable_params(a, b, kk, bias=False)
        for t in (1, 3):
            sub2 = {ci2: a, co2: b, k2: kk, t2: t, m2: 4}
            assert p3.subs(sub2) == cm.conv3d_params(a, b, t, kk)
            assert p21.subs(sub2) == cm.conv2plus1d_params(a, b, t, kk, 4)
    assert conv.subs({ci: 3, co: 8, k: 3}) == 224 and conv.subs({ci: 8, co: 16, k: 3}) == 1168  # seed 003


def test_separable_ratio_and_matching_channels():
    ratio, (ci, co, k) = S.separable_cost_ratio_expr()
    assert sp.simplify(ratio - (1 / co + 1 / k ** 2)) == 0
    assert ci not in ratio.free_symbols
    assert Fraction(str(ratio.subs({co: 64, k: 3}))) == cm.separable_cost_ratio(64, 3)
    m_expr, (c_in, c_out, kk, t) = S.conv2plus1d_matching_channels_expr()
    for a, b, tv, kv in itertools.product([1, 3, 64], [2, 64], [1, 3, 5], [1, 3]):
        value = m_expr.subs({c_in: a, c_out: b, kk: kv, t: tv})
        assert sp.floor(value) == cm.conv2plus1d_matching_channels(a, b, tv, kv)


def test_symbolic_errors():
    with pytest.raises(ValueError, match="L must be a positive int"):
        S.receptive_field_expr(0)
    with pytest.raises(ValueError, match='op must be "convolution" or "cross_correlation", got \'x\''):
        S.commutator(2, 2, op="x")
    with pytest.raises(ValueError, match="larger than the padded input"):
        S.conv1d_sum(2, 3)


def test_symbolic_is_not_imported_by_cnnmath():
    """cnnmath itself needs only NumPy: importing it must not import SymPy's builders."""
    import subprocess
    import sys

    code = "import sys, cnnmath; print('cnnmath.symbolic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_docstring_examples():
    """The examples in cnnmath.symbolic's docstrings run and print what they claim."""
    import doctest

    import importlib

    attempted = 0
    for name in ("conv_sums", "signals"):
        module = importlib.import_module(f"cnnmath.symbolic.{name}")
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, f"cnnmath.symbolic.{name}: {result.failed} docstring examples failed"
        attempted += result.attempted
    assert attempted > 0
