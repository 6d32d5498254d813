"""Is convolution invertible? The matrix of a 1D convolution, its rank, conditioning and inverse.

Seed 004 (section 1) calls mathematical convolution "commutative and invertible". For a finite
signal of length ``n`` and a kernel ``w`` of length ``k`` the true convolution
``(x * w)[t] = sum_j w[j] x[t - j]`` is a linear map, ``y = A x``, whose matrix depends on what
happens at the ends (chapter 2, errata):

``"full"``      every overlap, ``n + k - 1`` rows: injective for every nonzero ``w`` (polynomial
                multiplication), but ill-conditioned when ``w(z)`` has zeros on the unit circle.
``"same"``      the centre ``n`` rows of the full result (SciPy's, from row ``(k - 1) // 2``):
                square, invertible for some kernels and singular for others.
``"valid"``     only complete overlaps, ``n - k + 1`` rows: never injective for ``k > 1``.
``"circular"``  periodic signals, ``(x * w)[t] = sum_j w[j] x[(t - j) mod n]``: a circulant matrix,
                diagonalised by the DFT; invertible exactly when the DFT of ``w`` (zero-padded to
                ``n``) has no zero.

A stride ``s`` keeps every ``s``-th row (rows ``0, s, 2s, ...``), about ``n / s`` of them: never
injective for ``s > 1``.
"""

from __future__ import annotations

import numpy as np

from ._args import as_float_array, check_rank, int_tuple
from .signal import convolve

__all__ = ["convolution_matrix", "circular_deconvolve", "condition_number"]

_MODES = ("full", "same", "valid", "circular")


def _kernel(w, n, mode):
    w = as_float_array(w, "w")
    check_rank(w, "w", ndim=1, layout="(k,)")
    if w.size == 0:
        raise ValueError("w must have at least one tap, got an empty array")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f'mode must be one of "full", "same", "valid", "circular", got {mode!r}')
    if mode in ("valid", "circular", "same") and w.size > n:
        raise ValueError(f"{mode} convolution needs len(w) <= n, got len(w) = {w.size} and n = {n}")
    return w


def convolution_matrix(w, n, mode="full", stride=1):
    """The matrix ``A`` with ``A @ x`` = the true convolution of a length-``n`` signal with ``w``.

    Parameters
    ----------
    w : array_like, shape (k,)
        The kernel (``k <= n`` except in ``"full"`` mode).
    n : int
        Length of the signal.
    mode : {"full", "same", "valid", "circular"}, default "full"
        See the module docstring.
    stride : int, default 1
        Keep rows ``0, s, 2s, ...`` of the stride-1 matrix.

    Returns
    -------
    A : ndarray, shape (rows, n)
        ``rows = ceil(m / s)`` with ``m = n + k - 1``, ``n``, ``n - k + 1`` or ``n``; column ``i`` is
        the response to the unit impulse at ``i``. float64 unless ``w`` is float32.
    """
    w = _kernel(w, n, mode)
    (s,) = int_tuple(stride, 1, "stride")
    eye = np.eye(n, dtype=w.dtype)
    if mode == "circular":
        spectrum = np.fft.fft(w, n)
        cols = [np.real(np.fft.ifft(np.fft.fft(e) * spectrum)) for e in eye]
    else:
        cols = [convolve(e, w, mode) for e in eye]
    return np.stack(cols, axis=1)[::s].astype(w.dtype)


def circular_deconvolve(y, w, rtol=1e-10):
    """The minimum-norm ``x`` whose circular convolution with ``w`` is closest to ``y`` (the pseudo-inverse).

    Divides the DFT of ``y`` by that of ``w`` wherever ``|w_hat| > rtol * max |w_hat|`` and sets the
    other frequencies, the ones the convolution erases, to zero. When ``w_hat`` has no zero this is
    the exact inverse; for ``w = [1, -1]`` it returns ``x - mean(x)``: the constant is lost.

    Parameters
    ----------
    y : array_like, shape (n,)
        A circular convolution ``x * w``.
    w : array_like, shape (k,), k <= n
    rtol : float, default 1e-10
        Frequencies with ``|w_hat| <= rtol * max |w_hat|`` count as zeros.

    Returns
    -------
    x : ndarray, shape (n,)
        float64 unless ``y`` and ``w`` are float32.
    """
    y = as_float_array(y, "y")
    check_rank(y, "y", ndim=1, layout="(n,)")
    w = _kernel(w, y.size, "circular")
    if not isinstance(rtol, (int, float, np.floating)) or isinstance(rtol, bool) or not rtol >= 0:
        raise ValueError(f"rtol must be a non-negative number, got {rtol!r}")
    spectrum = np.fft.fft(w.astype(np.float64), y.size)
    keep = np.abs(spectrum) > rtol * np.abs(spectrum).max()
    x_hat = np.zeros(y.size, complex)
    x_hat[keep] = np.fft.fft(y.astype(np.float64))[keep] / spectrum[keep]
    return np.real(np.fft.ifft(x_hat)).astype(np.result_type(y, w))


def condition_number(w, n, mode="full", stride=1):
    """How much inverting the convolution can amplify a relative error: ``sigma_max / sigma_n``.

    ``sigma_n`` is the ``n``-th largest singular value of :func:`convolution_matrix`; the
    condition number is ``inf`` when the map is not injective (fewer than ``n`` rows, or rank
    below ``n`` at NumPy's ``matrix_rank`` tolerance).

    Parameters
    ----------
    w, n, mode, stride
        As in :func:`convolution_matrix`.

    Returns
    -------
    cond : float
        ``>= 1``, or ``inf``.
    """
    matrix = np.asarray(convolution_matrix(w, n, mode, stride=stride), dtype=np.float64)
    sv = np.linalg.svd(matrix, compute_uv=False)            # min(rows, n) values, largest first
    if sv.size < n or sv[-1] <= sv[0] * max(matrix.shape) * np.finfo(np.float64).eps:
        return float("inf")                                 # fewer rows than n, or rank below n
    return float(sv[0] / sv[-1])
