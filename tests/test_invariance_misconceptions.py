"""The aliasing_gp_invertibility notebook's misconceptions: unit tests, then end to end.

Unit tests on plain data: each mistake is made on purpose by a hand-written NumPy loop (independent
of the cnnmath variants the diagnosers compute), and :func:`course_grader.misconceptions.diagnose`
must name exactly that mistake; right answers and unrelated wrong ones are never diagnosed.
End to end: one notebook with six typical wrong answers and two right ones, graded through the
real sandbox and job pipeline, loses exactly the parts of the wrong answers, and each failed part's
message names its misconception; the reference answers, graded the same way, earn every point and no flag
(they are not mistaken for copies of cnnmath).
"""
import math

import numpy as np
import pytest

import cnnmath
from course_grader.invariance_misconceptions import INVARIANCE_SENTENCES
from course_grader.misconceptions import SENTENCES, diagnose
from tests.grader_helpers import grade_reference_and_wrong_answers, needs_bwrap

RNG = np.random.default_rng(1414)
NAME = "aliasing_gp_invertibility"


def loop_max_pool(x, k, s, wrap=True, fill=0.0):
    n, c, h, w = x.shape
    y = np.zeros((n, c, h // s, w // s))
    for i in range(h // s):
        for j in range(w // s):
            vals = [x[:, :, (s * i + a) % h, (s * j + b) % w] if wrap or (s * i + a < h and s * j + b < w)
                    else np.full((n, c), fill) for a in range(k) for b in range(k)]
            y[:, :, i, j] = np.max(vals, axis=0)
    return y


def loop_blur_pool(x, s, dense_max=True, scale=1 / 16, wrap=True):
    m = loop_max_pool(x, 2, 1, wrap=wrap) if dense_max else x
    n, c, h, w = m.shape
    weights = np.outer([1, 2, 1], [1, 2, 1]) * scale
    y = np.zeros((n, c, h // s, w // s))
    for i in range(h // s):
        for j in range(w // s):
            for a in range(3):
                for b in range(3):
                    r, q = s * i + a - 1, s * j + b - 1
                    if wrap or (0 <= r < h and 0 <= q < w):
                        y[:, :, i, j] += weights[a, b] * m[:, :, r % h, q % w]
    return y


def test_the_loops_are_right_when_they_make_no_mistake():
    x = RNG.standard_normal((2, 2, 8, 4))
    np.testing.assert_allclose(loop_max_pool(x, 3, 2), cnnmath.circular_max_pool(x, 3, 2))
    np.testing.assert_allclose(loop_blur_pool(x, 2), cnnmath.blur_pool(x, 2), atol=1e-12)


def test_pooling_mistakes_are_named():
    x = np.abs(RNG.standard_normal((1, 2, 8, 8))) + 0.1
    assert diagnose("circular_max_pool2d", (x, 3, 2), {}, loop_max_pool(x, 3, 2)) is None
    assert diagnose("circular_max_pool2d", (x, 3, 2), {}, loop_max_pool(x, 3, 2, wrap=False)) == "circular_not_wrapped"
    y = RNG.standard_normal((1, 2, 8, 8))
    assert diagnose("circular_max_pool2d", (y, 2, 1), {}, loop_max_pool(y, 2, 1, wrap=False, fill=-np.inf)) == \
        "circular_not_wrapped"
    assert diagnose("blur_pool2d", (y, 2), {}, loop_blur_pool(y, 2)) is None
    assert diagnose("blur_pool2d", (y, 2), {}, loop_max_pool(y, 2, 2)) == "blur_skipped"
    assert diagnose("blur_pool2d", (y, 2), {}, loop_blur_pool(y, 2, dense_max=False)) == "blur_max_skipped"
    assert diagnose("blur_pool2d", (y, 2), {}, loop_blur_pool(y, 2, scale=1.0)) == "blur_not_normalized"
    assert diagnose("blur_pool2d", (y, 2), {}, loop_blur_pool(y, 2, wrap=False)) == "circular_not_wrapped"
    assert diagnose("blur_pool2d", (y, 2), {}, np.zeros((1, 2, 4, 4))) is None
    p, ps = loop_max_pool(y, 2, 2), loop_max_pool(np.roll(y, 1, axis=3), 2, 2)
    assert diagnose("equivariance_defect", (p, ps), {}, float(np.max(np.abs(ps - p)))) == "defect_not_minimised"
    p2 = loop_max_pool(np.roll(y, 2, axis=3), 2, 2)
    assert diagnose("equivariance_defect", (p, p2), {}, 0.0) is None


def loop_circular_conv(x, w, b, flip=False, wrap=True):
    n, c, h, wd = x.shape
    k, p = w.shape[-1], (w.shape[-1] - 1) // 2
    y = np.zeros((n, w.shape[0], h, wd)) + b[None, :, None, None]
    for i in range(h):
        for j in range(wd):
            for a in range(k):
                for q in range(k):
                    r, s = i + a - p, j + q - p
                    if wrap or (0 <= r < h and 0 <= s < wd):
                        tap = w[:, :, k - 1 - a, k - 1 - q] if flip else w[:, :, a, q]
                        y[:, :, i, j] += x[:, :, r % h, s % wd] @ tap.T
    return y


def test_circular_conv_mistakes_are_named():
    x, w, b = RNG.standard_normal((2, 2, 5, 6)), RNG.standard_normal((3, 2, 3, 3)), RNG.standard_normal(3)
    right = loop_circular_conv(x, w, b)
    np.testing.assert_allclose(right, cnnmath.conv(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap"), w, b),
                               atol=1e-12)
    assert diagnose("circular_conv2d", (x, w, b), {}, right) is None
    assert diagnose("circular_conv2d", (x, w, b), {}, loop_circular_conv(x, w, b, flip=True)) == "flipped_kernel"
    assert diagnose("circular_conv2d", (x, w, b), {}, loop_circular_conv(x, w, b, wrap=False)) == "circular_not_wrapped"


def loop_gp(x, xq, k, sw, sb, pad=0, flip=False):
    xp, xqp = np.pad(x, ((0, 0), (pad, pad))), np.pad(xq, ((0, 0), (pad, pad)))
    la, lb = xp.shape[1] - k + 1, xqp.shape[1] - k + 1
    out = np.full((la, lb), float(sb))
    for o in range(la):
        for q in range(lb):
            for c in range(x.shape[0]):
                for j in range(k):
                    out[o, q] += sw * xp[c, o + j] * xqp[c, q + (k - 1 - j if flip else j)]
    return out


def test_gp_mistakes_are_named():
    x, xq = RNG.standard_normal((2, 9)), RNG.standard_normal((2, 7))
    args, kw = (x, xq, 3), dict(sigma_w2=2.5, sigma_b2=0.4, padding=1)
    assert diagnose("conv_gp_kernel", args, kw, loop_gp(x, xq, 3, 2.5, 0.4, 1)) is None
    assert diagnose("conv_gp_kernel", args, kw, loop_gp(x, xq, 3, 2.5, 0.0, 1)) == "gp_bias_variance_missing"
    assert diagnose("conv_gp_kernel", args, kw, loop_gp(x, xq, 3, math.sqrt(2.5), math.sqrt(0.4), 1)) == \
        "gp_std_for_variance"
    assert diagnose("conv_gp_kernel", args, kw, loop_gp(x, xq, 3, 2.5, 0.4, 1, flip=True)) == "gp_windows_misaligned"
    assert diagnose("conv_gp_kernel", args, kw, loop_gp(x, xq, 3, 2.5, 0.4, 0)) == "padding_forgotten"
    w, b = RNG.standard_normal((50, 2, 3)), RNG.standard_normal(50)
    feats = lambda v, bias: np.array([[sum(w[s, c, j] * v[c, o + j] for c in range(2) for j in range(3)) + bias[s]  # noqa: E731
                                       for o in range(v.shape[1] - 2)] for s in range(50)])
    f, fq = feats(x, b), feats(xq, b)
    right = sum(np.outer(f[s], fq[s]) for s in range(50)) / 50
    assert diagnose("monte_carlo_gp_kernel", (x, xq, w, b), {}, right) is None
    assert diagnose("monte_carlo_gp_kernel", (x, xq, w, b), {}, np.outer(f.mean(0), fq.mean(0))) == "gp_product_of_means"
    assert diagnose("monte_carlo_gp_kernel", (x, xq, w, b), {}, right * 50 / 49) == "gp_sample_variance_denominator"
    f0, fq0 = feats(x, np.zeros(50)), feats(xq, np.zeros(50))
    assert diagnose("monte_carlo_gp_kernel", (x, xq, w, b), {}, f0.T @ fq0 / 50) == "gp_bias_variance_missing"


def loop_matrix(w, n, mode, stride=1, flip=False, wrap=True):
    k = len(w)
    first, rows = {"full": (0, n + k - 1), "same": ((k - 1) // 2, n), "valid": (k - 1, n - k + 1), "circular": (0, n)}[mode]
    a = np.zeros((rows, n))
    for r in range(rows):
        for j in range(k):
            i = first + r + j if flip else first + r - j          # cross-correlation reads x[t + j]
            if flip and mode != "circular":
                i -= k - 1
            if mode == "circular" and wrap:
                a[r, i % n] += w[j]
            elif 0 <= i < n:
                a[r, i] += w[j]
    return a[::stride]


@pytest.mark.parametrize("mode", ["full", "valid", "circular"])
def test_matrix_mistakes_are_named(mode):
    w = RNG.standard_normal(3)
    right = loop_matrix(w, 7, mode, 2)
    np.testing.assert_allclose(right, cnnmath.convolution_matrix(w, 7, mode, stride=2), atol=1e-12)
    assert diagnose("convolution_matrix", (w, 7, mode, 2), {}, right) is None
    assert diagnose("convolution_matrix", (w, 7, mode, 2), {}, loop_matrix(w, 7, mode, 2, flip=True)) == \
        "convolution_not_flipped"
    assert diagnose("convolution_matrix", (w, 7, mode, 2), {}, loop_matrix(w, 7, mode, 1)) == "matrix_stride_ignored"
    if mode == "circular":
        assert diagnose("convolution_matrix", (w, 7, mode), {}, loop_matrix(w, 7, mode, wrap=False)) == \
            "circular_not_wrapped"


def test_inverse_and_condition_mistakes_are_named():
    x = RNG.standard_normal(8)
    w = np.array([1.0, -1.0])
    y = x - np.roll(x, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        naive = np.real(np.fft.ifft(np.fft.fft(y) / np.fft.fft(w, 8)))
    assert diagnose("circular_deconvolve", (y, w), {}, x - x.mean()) is None
    assert diagnose("circular_deconvolve", (y, w), {}, naive) == "division_by_zero_frequency"
    w3 = np.array([2.0, 1.0, 0.5])
    y3 = cnnmath.convolution_matrix(w3, 8, "circular") @ x
    wrong = np.real(np.fft.ifft(np.fft.fft(y3) / np.conj(np.fft.fft(w3, 8))))
    assert diagnose("circular_deconvolve", (y3, w3), {}, wrong) == "convolution_not_flipped"
    wide = np.array([[1.0 * (0 <= t - j < 3) for j in range(8)] for t in range(6)])   # any 6 x 8 matrix
    assert diagnose("condition_number", (np.array([1.0, 2, 1]), 8, "valid"), {}, float(np.linalg.cond(wide))) == \
        "finite_condition_of_non_injective"
    assert diagnose("condition_number", (np.array([1.0, 2, 1]), 8, "valid"), {}, float("inf")) is None
    a = np.array([[sum(w3[j] for j in range(3) if (t - i) % 8 == j) for i in range(8)] for t in range(8)])
    s = np.linalg.svd(a, compute_uv=False)
    args = (w3, 8, "circular")
    assert diagnose("condition_number", args, {}, float(s[0] / s[-1])) is None
    eig = np.linalg.eigvalsh(a.T @ a)
    assert diagnose("condition_number", args, {}, float(eig.max() / eig.min())) == "condition_squared"
    assert diagnose("condition_number", args, {}, float(s[-1] / s[0])) == "condition_inverted"
    assert diagnose("condition_number", args, {}, "three") is None


def test_every_sentence_is_registered_once():
    assert set(INVARIANCE_SENTENCES) <= set(SENTENCES)
    assert all(SENTENCES[k] == v for k, v in INVARIANCE_SENTENCES.items())


# -- end to end ------------------------------------------------------------------------------
WRONG_ANSWERS = {   # answer cell -> (text in the reference answer, replacement, failed part, misconception)
    "equivariance_defect": ("np.roll(y, (r1, r2), axis=(2, 3))", "y", "test_stride_breaks_equivariance",
                            "defect_not_minimised"),
    "blur_pool2d": ("b = np.array([1.0, 2.0, 1.0]) / 4", "b = np.array([1.0, 2.0, 1.0])", "test_blur_pool2d",
                    "blur_not_normalized"),
    "conv_gp_kernel": ("xb[:, j:j + lb])", "xb[:, k - 1 - j:k - 1 - j + lb])", "test_conv_gp_kernel",
                       "gp_windows_misaligned"),
    "monte_carlo_gp_kernel": ("return (fa.T @ fb / len(w)).astype(dtype)",
                              "return np.outer(fa.mean(axis=0), fb.mean(axis=0)).astype(dtype)",
                              "test_monte_carlo_gp_kernel", "gp_product_of_means"),
    "convolution_matrix": ("w = np.asarray(w, dtype=float_dtype(w))", "w = np.asarray(w, dtype=float_dtype(w))[::-1]",
                           "test_convolution_matrix", "convolution_not_flipped"),
    "condition_number": ('    if a.shape[0] < n or np.linalg.matrix_rank(a) < n:\n        return float("inf")\n', "",
                         "test_condition_number", "finite_condition_of_non_injective"),
}


@needs_bwrap
def test_the_grader_names_each_misconception(tmp_path):
    """Reference answers: full marks, no flag; the wrong answers lose exactly their parts, each misconception named."""
    lost = {part for _old, _new, part, _key in WRONG_ANSWERS.values()}
    grade_reference_and_wrong_answers(NAME, WRONG_ANSWERS, SENTENCES, tmp_path, lost=lost)
