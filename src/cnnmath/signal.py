"""Plain (single-channel) cross-correlation and true convolution of arrays of any rank.

Seed 004 (section 1) contrasts the two operations (written here for any rank, 0-based,
with multi-indices ``t``, ``j``)::

    convolution        (x * k)[t] = sum_j x[t - j] k[j]            commutative: x * k = k * x
    cross-correlation  (x ⋆ k)[t] = sum_j x[t + j] k[j]            not commutative

Deep-learning "convolution" (:func:`cnnmath.conv`) is the cross-correlation. The
true convolution is the cross-correlation with the kernel flipped along every axis,
``convolve(x, k, mode) == cross_correlate(x, k[::-1, ::-1, ...], mode)`` (in every mode
below), and both agree with :func:`numpy.convolve` (1-D) and
:func:`scipy.signal.convolve` / :func:`scipy.signal.correlate` (any rank).

Modes (per axis, input length ``n``, kernel length ``m``; the names of seed 004 section 4)
--------------------------------------------------------------------------------------
``"full"``
    every overlap, output length ``n + m - 1``: the kernel hangs ``m - 1`` over each
    edge (zero padding ``m - 1`` on both sides).
``"valid"``
    only complete overlaps, length ``|n - m| + 1``. As in NumPy/SciPy the larger
    array need not be the first: the result is the centre of the full output, and one
    of the two arrays must be at least as large as the other along *every* axis.
``"same"``
    length ``n`` (the size of ``x``, the first argument): the centre of the full output,
    starting at index ``(m - 1) // 2`` of it, SciPy's convention. For cross-correlation
    that is zero padding of ``m // 2`` *before* and ``(m - 1) // 2`` *after*.
    (:func:`numpy.convolve` instead returns the length of the *longer* input; the two
    agree whenever ``x`` is at least as long as ``k``.)

Relation to ``cnnmath.conv(..., padding="same")``: PyTorch (and :mod:`cnnmath.conv`)
split the total padding ``m - 1`` the other way round, ``(m - 1) // 2`` before and
``m // 2`` after. For odd ``m`` both are ``(m - 1) / 2`` on each side and
``cross_correlate(x, k, "same") == conv(x[None, None], k[None, None], padding="same")[0, 0]``;
for even ``m`` the SciPy window starts one sample earlier (the two results are shifted by
one). "valid" and "full" coincide with ``conv``'s ``padding="valid"`` / ``"full"``.

Implementation: one source. Both functions call :func:`cnnmath.conv` on
``x[None, None]`` and ``k[None, None]`` (one image, one channel) with the explicit
``(before, after)`` zero padding of the mode above; ``convolve`` first flips ``k``.
"""

from __future__ import annotations

import numpy as np

from ._args import as_float_array, result_dtype
from .conv import conv

__all__ = ["cross_correlate", "convolve", "cross_correlate_naive", "convolve_naive"]

_MODES = ("valid", "same", "full")


def _check(x, k, mode):
    x = as_float_array(x, "x")
    k = as_float_array(k, "k")
    if not isinstance(mode, str) or mode.lower() not in _MODES:
        raise ValueError(f'mode must be one of "valid", "same", "full", got {mode!r}')
    mode = mode.lower()
    if x.ndim == 0 or k.ndim == 0:
        raise ValueError(f"x and k must have at least one dimension, got shapes {x.shape} and {k.shape}")
    if x.ndim != k.ndim:
        raise ValueError(
            f"x and k must have the same number of dimensions, got x.shape={x.shape} and k.shape={k.shape}"
        )
    if x.size == 0 or k.size == 0:
        raise ValueError(f"x and k must not be empty, got shapes {x.shape} and {k.shape}")
    if mode == "valid":
        x_big = all(a >= b for a, b in zip(x.shape, k.shape))
        k_big = all(b >= a for a, b in zip(x.shape, k.shape))
        if not (x_big or k_big):
            raise ValueError(
                f'mode="valid" needs one array at least as large as the other along every axis, '
                f"got x.shape={x.shape} and k.shape={k.shape}"
            )
    return x, k, mode


def _full_range(n, m, mode):
    """(start, length) of the requested output inside the full output, per axis."""
    if mode == "full":
        return 0, n + m - 1
    if mode == "same":
        return (m - 1) // 2, n
    return min(n, m) - 1, abs(n - m) + 1  # valid


def _padding_pairs(x_shape, k_shape, mode):
    """Zero padding ``(before, after)`` per axis that turns ``mode`` into a "valid" correlation.

    ``full[t] = sum_j x[t + j - (m - 1)] k[j]``; the requested output is ``full[start : start + length]``,
    so ``x`` needs ``m - 1 - start`` zeros before and ``start + length - n`` after (never negative).
    """
    pairs = []
    for n, m in zip(x_shape, k_shape):
        start, length = _full_range(n, m, mode)
        pairs.append((m - 1 - start, start + length - n))
    return tuple(pairs)


def _correlate(x, k, mode):
    """The one computation: :func:`cnnmath.conv` with one image, one channel and explicit padding."""
    return conv(x[None, None], k[None, None], padding=_padding_pairs(x.shape, k.shape, mode))[0, 0]


def cross_correlate(x, k, mode="valid"):
    """Cross-correlation ``(x ⋆ k)[t] = sum_j x[t + j] k[j]`` of two arrays of any rank.

    This is deep learning's "convolution" for one channel (seed 004, the non-commutative
    operation of section 1; seed 001's ``(X * K)[i, j] = sum_{m,n} X[i+m, j+n] K[m, n]``).

    Parameters
    ----------
    x : array_like, shape (n_1, ..., n_D)
        The signal / image / volume, any rank D >= 1 (no batch or channel axes).
    k : array_like, shape (m_1, ..., m_D)
        The kernel, same rank as ``x``.
    mode : {"valid", "same", "full"}, default "valid"
        Output extent per axis: ``n - m + 1`` (valid, ``|n - m| + 1`` in general),
        ``n`` (same, SciPy's centring: ``m // 2`` zeros before), ``n + m - 1`` (full).
        See the module docstring for how "same" relates to ``conv(padding="same")``.

    Returns
    -------
    ndarray
        The result, float dtype of ``x`` and ``k`` promoted (ints become float64).
        Equals ``scipy.signal.correlate(x, k, mode)``.
    """
    x, k, mode = _check(x, k, mode)
    return _correlate(x, k, mode)


def convolve(x, k, mode="full"):
    """True convolution ``(x * k)[t] = sum_j x[t - j] k[j]`` of two arrays of any rank.

    Commutative (``convolve(x, k, "full") == convolve(k, x, "full")``) and equal to
    :func:`numpy.convolve` for 1-D arrays and :func:`scipy.signal.convolve` for any rank.
    Implemented as ``cross_correlate(x, flip(k), mode)`` (seed 004 section 1: flipping
    the kernel turns one operation into the other).

    Parameters
    ----------
    x, k : array_like of the same rank D >= 1
    mode : {"full", "valid", "same"}, default "full"
        As for :func:`cross_correlate` (full ``n + m - 1``, valid ``|n - m| + 1``,
        same ``n`` centred as SciPy does).

    Returns
    -------
    ndarray
        float dtype of the promoted inputs.
    """
    x, k, mode = _check(x, k, mode)
    return _correlate(x, np.flip(k), mode)


# ----------------------------------------------------------------------------------------
# Naive twins: the sums written out, element by element.
# ----------------------------------------------------------------------------------------

def _naive(x, k, mode, sign):
    dtype = result_dtype(x, k)
    ranges = [_full_range(n, m, mode) for n, m in zip(x.shape, k.shape)]
    out = np.zeros(tuple(length for _, length in ranges), dtype=dtype)
    for t in np.ndindex(*out.shape):
        total = 0.0
        for j in np.ndindex(*k.shape):
            if sign > 0:  # correlation: full[u] = sum_j x[u + j - (m - 1)] k[j]
                i = tuple(ti + st + ji - (m - 1) for ti, (st, _), ji, m in zip(t, ranges, j, k.shape))
            else:  # convolution: full[u] = sum_j x[u - j] k[j]
                i = tuple(ti + st - ji for ti, (st, _), ji in zip(t, ranges, j))
            if all(0 <= ii < n for ii, n in zip(i, x.shape)):
                total += x[i] * k[j]
        out[t] = total
    return out


def cross_correlate_naive(x, k, mode="valid"):
    """Loop version of :func:`cross_correlate`: ``out[t] = sum_j x[t + j] k[j]`` (x is 0 outside)."""
    x, k, mode = _check(x, k, mode)
    return _naive(x, k, mode, +1)


def convolve_naive(x, k, mode="full"):
    """Loop version of :func:`convolve`: ``out[t] = sum_j x[t - j] k[j]`` (x is 0 outside)."""
    x, k, mode = _check(x, k, mode)
    return _naive(x, k, mode, -1)

