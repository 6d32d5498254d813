"""Misconceptions of the aliasing_gp_invertibility notebook (merged into
:mod:`course_grader.misconceptions`, which runs them: same contract, plain data only).

Each diagnoser takes the arguments the trusted test sent to one student function and returns the
correct result (``cnnmath``) and the wrong variants that name a mistake: windows that do not wrap
around a periodic border (a circular convolution's kernel flipped, too), blur pooling without its blur, its max or its normalisation, a defect
measured without searching the shifts, a Gaussian-process kernel without the bias variance, with
standard deviations for variances, with misaligned taps, a Monte Carlo estimate that multiplies
averages, a convolution matrix without the flip or the wrap or the stride, an inverse that divides
by erased frequencies, and condition numbers that are finite for a map nothing can undo, squared
or inverted. A variant given as a one-argument function is a predicate on the student's value.
"""
import math

import numpy as np

__all__ = ["INVARIANCE_DIAGNOSERS", "INVARIANCE_SENTENCES"]

INVARIANCE_SENTENCES = {
    "circular_not_wrapped": (
        "Your result matches zero (or no) padding at the border: the signal is periodic, so a window that runs "
        "past the end wraps around to the start, index (s * i + a) mod H."),
    "blur_skipped": (
        "Your blur pool matches plain max pooling with the stride: blur pooling takes the 2x2 max at stride 1, "
        "blurs it with [1, 2, 1]/4 along each axis, and only then keeps every s-th position."),
    "blur_max_skipped": (
        "Your blur pool matches blurring and subsampling the input without the max: blur pooling first takes "
        "the 2x2 max densely (stride 1, circular), then blurs and subsamples."),
    "blur_not_normalized": (
        "Your blur pool is 16 times too large: the binomial kernel is [1, 2, 1]/4 along each axis, the 3x3 "
        "weights 1-2-1, 2-4-2, 1-2-1 divided by 16, so that a constant image passes unchanged."),
    "defect_not_minimised": (
        "Your defect compares the two outputs without shifting them: equivariance asks whether the shifted "
        "input's output is SOME circular shift of the output, so take the minimum over every shift (r1, r2)."),
    "gp_bias_variance_missing": (
        "Your kernel leaves out the bias: one bias b ~ N(0, sigma_b2) is shared by every position, so it adds "
        "sigma_b2 to every entry (and each sampled bias enters its feature map f_s)."),
    "gp_std_for_variance": (
        "Your kernel uses standard deviations where variances belong: E[w^2] = sigma_w2 and E[b^2] = sigma_b2 "
        "enter the kernel as given, not their square roots."),
    "gp_windows_misaligned": (
        "Your kernel pairs tap j of one window with tap k - 1 - j of the other: the same weight w[c, j] "
        "multiplies x[c, o + j] and x'[c, o' + j], and E[w_j w_m] = 0 unless j = m."),
    "gp_product_of_means": (
        "Your estimate is the product of the averages, mean f(x) times mean f(x'), which tends to 0: the "
        "kernel is the average of the products f_s(x)[o] f_s(x')[o'] over the samples."),
    "gp_sample_variance_denominator": (
        "Your estimate divides by S - 1: the Monte Carlo estimate of E[f(x) f(x')] is the plain mean of the "
        "products over the S samples (no sample mean is subtracted, so nothing needs correcting)."),
    "convolution_not_flipped": (
        "Your result matches the cross-correlation (kernel not flipped): seed 004's convolution is "
        "(x * w)(t) = sum_j w[j] x[t - j], so w runs backwards along each row of the matrix."),
    "matrix_stride_ignored": (
        "Your matrix has every row of the stride-1 convolution: a stride s keeps only rows 0, s, 2s, ..., the "
        "outputs a strided layer computes."),
    "division_by_zero_frequency": (
        "Your inverse divides by DFT coefficients of w that are zero: the convolution erases those frequencies "
        "and nothing brings them back, so set them to 0 (the minimum-norm answer) instead of dividing."),
    "finite_condition_of_non_injective": (
        "Your condition number is finite for a map that is not injective (fewer outputs than inputs, or a zero "
        "singular value): no inverse exists, so the condition number is inf."),
    "condition_squared": (
        "Your condition number is the square of the right one: it is the ratio of the singular values of A "
        "(the square roots of the eigenvalues of A^T A), sigma_max / sigma_n."),
    "condition_inverted": (
        "Your condition number is sigma_n / sigma_max, below 1: it is sigma_max / sigma_n, at least 1."),
}


def _cnnmath():
    import cnnmath
    return cnnmath


def _f(a):
    return np.asarray(a, dtype=np.float64)


def _pad(x, before, after, mode, value=0.0):
    pads = [(0, 0), (0, 0)] + [(before, after)] * (x.ndim - 2)
    return np.pad(x, pads, mode="wrap") if mode == "wrap" else np.pad(x, pads, constant_values=value)


def _circular_max_pool2d(x, k, stride=1):
    cm = _cnnmath()
    x = _f(x)
    ref = cm.circular_max_pool(x, k, stride)
    if k == 1:
        return ref, []
    return ref, [("circular_not_wrapped", lambda: cm.max_pool(_pad(x, 0, k - 1, "constant"), k, stride=stride)),
                 ("circular_not_wrapped", lambda: cm.max_pool(_pad(x, 0, k - 1, "constant", -np.inf), k, stride=stride)),
                 ("circular_not_wrapped", lambda: cm.max_pool(x, k, stride=stride))]


def _circular_conv2d(x, w, b=None):
    cm = _cnnmath()
    x, w = _f(x), _f(w)
    b = None if b is None else _f(b)
    p = (w.shape[-1] - 1) // 2
    conv = lambda w_, mode: cm.conv(_pad(x, p, p, mode), w_, b)  # noqa: E731
    return conv(w, "wrap"), [("flipped_kernel", lambda: conv(w[..., ::-1, ::-1], "wrap")),
                             ("circular_not_wrapped", lambda: conv(w, "constant"))]


def _blur(h, stride, mode):
    cm = _cnnmath()
    b = np.array([1.0, 2.0, 1.0]) / 4
    c = h.shape[1]
    w = np.broadcast_to(np.outer(b, b), (c, 1, 3, 3)).copy()
    return cm.conv(_pad(h, 1, 1, mode), w, stride=stride, groups=c)


def _blur_pool2d(x, stride=2):
    cm = _cnnmath()
    x = _f(x)
    ref = cm.blur_pool(x, stride)
    zero_max = cm.max_pool(_pad(x, 0, 1, "constant"), 2, stride=1)
    return ref, [("blur_skipped", lambda: cm.circular_max_pool(x, 2, stride)),
                 ("blur_max_skipped", lambda: _blur(x, stride, "wrap")),
                 ("blur_not_normalized", lambda: 16 * ref),
                 ("circular_not_wrapped", lambda: _blur(zero_max, stride, "constant")),
                 ("circular_not_wrapped", lambda: _blur(cm.circular_max_pool(x, 2, 1), stride, "constant"))]


def _equivariance_defect(y, y_shifted):
    cm = _cnnmath()
    y, ys = _f(y), _f(y_shifted)
    return cm.equivariance_defect(y, ys), [("defect_not_minimised", lambda: float(np.max(np.abs(ys - y))))]


def _misaligned(x, xq, k, sigma_w2, sigma_b2, padding):
    cm = _cnnmath()
    cols = cm.im2col(x[None], k, padding=padding)[0]
    cq = cm.im2col(xq[None], k, padding=padding)[0]
    cq = cq.reshape(xq.shape[0], k, -1)[:, ::-1].reshape(cq.shape)
    return sigma_b2 + sigma_w2 * cols.T @ cq


def _conv_gp_kernel(x, x_prime, k, sigma_w2=1.0, sigma_b2=0.0, padding=0):
    cm = _cnnmath()
    x, xq = _f(x), _f(x_prime)
    gp = lambda sw, sb, p: cm.conv_gp_kernel(x, xq, k, sigma_w2=sw, sigma_b2=sb, padding=p)  # noqa: E731
    ref = gp(sigma_w2, sigma_b2, padding)
    out = []
    if sigma_b2:
        out.append(("gp_bias_variance_missing", lambda: gp(sigma_w2, 0.0, padding)))
    out.append(("gp_std_for_variance", lambda: gp(math.sqrt(sigma_w2), math.sqrt(sigma_b2), padding)))
    out.append(("gp_windows_misaligned", lambda: _misaligned(x, xq, k, sigma_w2, sigma_b2, padding)))
    if padding:
        out.append(("padding_forgotten", lambda: gp(sigma_w2, sigma_b2, 0)))
    return ref, out


def _monte_carlo_gp_kernel(x, x_prime, weights, biases):
    cm = _cnnmath()
    x, xq, w, b = _f(x), _f(x_prime), _f(weights), _f(biases)
    ref = cm.monte_carlo_gp_kernel(x, xq, w, b)
    s = w.shape[0]

    def product_of_means():
        f, fq = cm.conv(x[None], w, b)[0], cm.conv(xq[None], w, b)[0]
        return np.outer(f.mean(axis=0), fq.mean(axis=0))
    out = [("gp_product_of_means", product_of_means)]
    if s > 1:
        out.append(("gp_sample_variance_denominator", lambda: ref * s / (s - 1)))
    out.append(("gp_bias_variance_missing", lambda: cm.monte_carlo_gp_kernel(x, xq, w)))
    return ref, out


def _xcorr_matrix(w, n, mode):
    """The matrix of the cross-correlation in the same mode (stride 1)."""
    cm = _cnnmath()
    a = cm.convolution_matrix(w[::-1], n, mode)
    return np.roll(a, -(len(w) - 1), axis=0) if mode == "circular" else a


def _convolution_matrix(w, n, mode="full", stride=1):
    cm = _cnnmath()
    w = _f(w)
    ref = cm.convolution_matrix(w, n, mode, stride=stride)
    out = [("convolution_not_flipped", lambda: _xcorr_matrix(w, n, mode)[::stride])]
    if mode == "circular":
        out.append(("circular_not_wrapped", lambda: cm.convolution_matrix(w, n, "full")[:n][::stride]))
    if stride != 1:
        out.append(("matrix_stride_ignored", lambda: cm.convolution_matrix(w, n, mode)))
    return ref, out


def _circular_deconvolve(y, w):
    cm = _cnnmath()
    y, w = _f(y), _f(w)
    ref = cm.circular_deconvolve(y, w)
    spectrum = np.fft.fft(w, y.size)
    kept = np.abs(spectrum) > 1e-10 * np.abs(spectrum).max()

    def divided_by_zero(got):
        return (not kept.all()) and isinstance(got, np.ndarray) and got.shape == ref.shape \
            and got.dtype.kind in "fc" and not np.all(np.isfinite(got))

    def not_flipped():
        x_hat = np.zeros(y.size, complex)
        x_hat[kept] = np.fft.fft(y)[kept] / np.conj(spectrum[kept])
        return np.real(np.fft.ifft(x_hat))
    return ref, [("division_by_zero_frequency", divided_by_zero), ("convolution_not_flipped", not_flipped)]


def _condition_number(w, n, mode="full", stride=1):
    cm = _cnnmath()
    w = _f(w)
    ref = cm.condition_number(w, n, mode, stride=stride)
    if math.isinf(ref):
        def finite(got):
            return isinstance(got, (int, float, np.integer, np.floating)) and not isinstance(got, bool) \
                and math.isfinite(float(got))
        return ref, [("finite_condition_of_non_injective", finite)]
    if ref <= 1 + 1e-9:
        return ref, []
    return ref, [("condition_squared", lambda: ref * ref), ("condition_inverted", lambda: 1 / ref)]


#: student function name -> a function of the same arguments returning (reference, variants)
INVARIANCE_DIAGNOSERS = {
    "circular_max_pool2d": _circular_max_pool2d,
    "circular_conv2d": _circular_conv2d,
    "blur_pool2d": _blur_pool2d,
    "equivariance_defect": _equivariance_defect,
    "conv_gp_kernel": _conv_gp_kernel,
    "monte_carlo_gp_kernel": _monte_carlo_gp_kernel,
    "convolution_matrix": _convolution_matrix,
    "circular_deconvolve": _circular_deconvolve,
    "condition_number": _condition_number,
}
