"""Max and average pooling over any number of spatial dimensions, with their gradients.

Seed 001 (section 2) defines pooling with pool size ``p`` (2-D, channels-last there)::

    max:      Y[i, j, c] = max_{m, n in [0, p)}        X[p i + m, p j + n, c]
    average:  Y[i, j, c] = 1/p^2 sum_{m, n in [0, p)}  X[p i + m, p j + n, c]

that is, a window of size ``k = p`` moved with stride ``s = p``. This module implements
the general form with channels-first layout ``x: (N, C, *spatial)``, per-dimension
``kernel_size`` ``k``, ``stride`` ``s`` and symmetric ``padding`` ``p``::

    Y[n, c, o] = max_{j in [0, k)}          Xp[n, c, o * s + j]      (max_pool)
    Y[n, c, o] = 1/prod(k) sum_{j in [0, k)} Xp[n, c, o * s + j]      (avg_pool)

where ``o`` and ``j`` are multi-indices and ``Xp`` is ``x`` padded with ``p`` on both
sides of every spatial dimension. The output size per dimension is

    n_out = floor((n + 2 p - k) / s) + 1

Conventions are those of ``torch.nn.functional.max_pool{1,2,3}d`` /
``avg_pool{1,2,3}d`` with their defaults:

* ``stride`` defaults to ``kernel_size`` (non-overlapping windows, as in the seed);
* max pooling pads with ``-inf`` (padding never wins the max);
* average pooling pads with zeros and *counts* them (``count_include_pad=True``): the
  divisor is always ``prod(kernel_size)``;
* ``padding <= kernel_size // 2`` in every dimension (PyTorch refuses larger padding,
  which could create windows made only of padding);
* an input smaller than the kernel is fine as long as the *padded* input is not
  (``n < k <= n + 2 p``), as in ``max_pool{1,2,3}d`` and ``avg_pool{1,2}d``; only
  PyTorch's ``avg_pool3d`` rejects that case (an inconsistency of PyTorch, not followed);
* the max-pool gradient goes to the arg-max of each window; on ties the *first*
  maximum in row-major window order receives it, as PyTorch's CPU kernels do. Windows
  that overlap (``stride < kernel_size``) accumulate their gradients.
"""

from __future__ import annotations

import numpy as np

from ._args import as_float_array, check_rank, int_tuple
from ._columns import crop, pad_spatial, sliding_windows
from ._geometry import window_geometry
from .im2col import col2im

__all__ = [
    "max_pool",
    "avg_pool",
    "max_pool_backward",
    "avg_pool_backward",
    "max_pool_naive",
    "avg_pool_naive",
    "max_pool_backward_naive",
    "avg_pool_backward_naive",
]


def _pool_args(x, kernel_size, stride, padding):
    """Validate pooling arguments; return (x, k, s, pads, out_spatial)."""
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=3, layout="(N, C, *spatial)")
    ndim = x.ndim - 2
    k = int_tuple(kernel_size, ndim, "kernel_size")
    if isinstance(padding, str):
        raise TypeError(f"padding of a pooling layer must be an int or a tuple of {ndim} ints, got {padding!r}")
    p = int_tuple(padding, ndim, "padding", minimum=0)
    for pi, ki in zip(p, k):
        if pi > ki // 2:
            raise ValueError(
                f"padding must be at most half of kernel_size (kernel_size // 2 = {ki // 2}), "
                f"got padding={padding!r} with kernel_size={kernel_size!r}"
            )
    geo = window_geometry(x.shape[2:], k, k if stride is None else stride, tuple((pi, pi) for pi in p), 1)
    return x, geo.k, geo.s, geo.pads, geo.out


def _check_dout(dout, x, out):
    dout = as_float_array(dout, "dout")
    expected = x.shape[:2] + tuple(out)
    if dout.shape != expected:
        raise ValueError(f"dout must have the pooling output's shape {expected}, got {dout.shape}")
    return dout


def _windows(x, k, s, pads, fill):
    xp = pad_spatial(x, pads, fill)
    win = sliding_windows(xp, k, s, (1,) * len(k))
    return xp, win.reshape(win.shape[: x.ndim] + (-1,))  # (N, C, *out, prod(k)); copies


def max_pool(x, kernel_size, stride=None, padding=0):
    """Max pooling, the fast vectorized version (like ``F.max_pool{1,2,3}d``).

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
        Input, channels-first, with any number D >= 1 of spatial dimensions.
    kernel_size : int or tuple of D ints
        Window size ``k`` per spatial dimension (the seed's pool size ``p``).
    stride : int or tuple of D ints, optional
        Step between windows; defaults to ``kernel_size``.
    padding : int or tuple of D ints, default 0
        Implicit ``-inf`` padding on both sides; at most ``kernel_size // 2``.

    Returns
    -------
    y : ndarray, shape (N, C, *out)
        ``y[n, c, o] = max_{j} xp[n, c, o * s + j]`` with
        ``out = floor((spatial + 2 p - k) / s) + 1``; same float dtype as ``x``
        (integers become float64).

    Examples
    --------
    >>> max_pool(np.arange(16.).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    x, k, s, pads, _ = _pool_args(x, kernel_size, stride, padding)
    _, win = _windows(x, k, s, pads, -np.inf)
    return win.max(axis=-1)


def avg_pool(x, kernel_size, stride=None, padding=0):
    """Average pooling, the fast vectorized version (like ``F.avg_pool{1,2,3}d``).

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
    kernel_size : int or tuple of D ints
    stride : int or tuple of D ints, optional
        Defaults to ``kernel_size``.
    padding : int or tuple of D ints, default 0
        Zero padding on both sides, at most ``kernel_size // 2``; padded zeros are
        counted in the mean (``count_include_pad=True``).

    Returns
    -------
    y : ndarray, shape (N, C, *out)
        ``y[n, c, o] = sum_j xp[n, c, o * s + j] / prod(k)`` with
        ``out = floor((spatial + 2 p - k) / s) + 1``.
    """
    x, k, s, pads, _ = _pool_args(x, kernel_size, stride, padding)
    _, win = _windows(x, k, s, pads, 0.0)
    return (win.sum(axis=-1) / np.prod(k)).astype(x.dtype, copy=False)


def max_pool_backward(dout, x, kernel_size, stride=None, padding=0):
    """Gradient of :func:`max_pool` with respect to ``x``.

    Parameters
    ----------
    dout : array_like, shape (N, C, *out)
        Upstream gradient ``dL/dy``.
    x : array_like, shape (N, C, *spatial)
        The forward input (the arg-max is recomputed from it).
    kernel_size, stride, padding
        As in :func:`max_pool`.

    Returns
    -------
    dx : ndarray, shape (N, C, *spatial)
        ``dx[n, c, i] = sum_{o : argmax_j xp[n, c, o s + j] = i - o s + p} dout[n, c, o]``:
        each window passes its gradient to the position of its maximum (the first
        one on ties); overlapping windows add up.
    """
    x, k, s, pads, out = _pool_args(x, kernel_size, stride, padding)
    dout = _check_dout(dout, x, out)
    _, win = _windows(x, k, s, pads, -np.inf)
    arg = win.argmax(axis=-1)  # first maximum on ties, like torch
    kp, ndim = int(np.prod(k)), len(k)
    # columns (N, C, prod(k), *out): dout at the arg-max tap of each window, 0 elsewhere
    taps = np.arange(kp).reshape((1, 1, kp) + (1,) * ndim)
    cols = np.where(taps == arg[:, :, None], dout[:, :, None], np.zeros((), dtype=dout.dtype))
    cols = cols.reshape(x.shape[0], x.shape[1] * kp, int(np.prod(out)))
    dx = col2im(cols, x.shape, k, s, pads)  # the adjoint of the window read: overlaps add up
    return np.ascontiguousarray(dx, dtype=np.result_type(x.dtype, dout.dtype))


def avg_pool_backward(dout, x, kernel_size, stride=None, padding=0):
    """Gradient of :func:`avg_pool` with respect to ``x``.

    Returns
    -------
    dx : ndarray, shape (N, C, *spatial)
        ``dx[n, c, i] = sum_{o, j : o s + j = i + p} dout[n, c, o] / prod(k)``: every
        element of a window receives an equal share; overlapping windows add up.
    """
    x, k, s, pads, out = _pool_args(x, kernel_size, stride, padding)
    dout = _check_dout(dout, x, out)
    dtype = np.result_type(x.dtype, dout.dtype)
    share = (dout / np.prod(k)).astype(dtype, copy=False)
    kp, p_out = int(np.prod(k)), int(np.prod(out))
    # columns (N, C, prod(k), *out): every tap of a window gets the same share
    cols = np.broadcast_to(share[:, :, None], share.shape[:2] + (kp,) + share.shape[2:])
    cols = cols.reshape(x.shape[0], x.shape[1] * kp, p_out)
    return np.ascontiguousarray(col2im(cols, x.shape, k, s, pads), dtype=dtype)


# ----------------------------------------------------------------------------------------
# Naive twins: loops that read like the formulas (for the book and as a test reference).
# ----------------------------------------------------------------------------------------

def max_pool_naive(x, kernel_size, stride=None, padding=0):
    """Loop version of :func:`max_pool`: ``y[n, c, o] = max_j xp[n, c, o * s + j]``."""
    x, k, s, pads, out = _pool_args(x, kernel_size, stride, padding)
    xp = pad_spatial(x, pads, -np.inf)
    N, C = x.shape[:2]
    y = np.empty((N, C) + out, dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for o in np.ndindex(*out):
                window = tuple(slice(oi * si, oi * si + ki) for oi, si, ki in zip(o, s, k))
                y[(n, c) + o] = xp[(n, c) + window].max()
    return y


def avg_pool_naive(x, kernel_size, stride=None, padding=0):
    """Loop version of :func:`avg_pool`: ``y[n, c, o] = sum_j xp[n, c, o * s + j] / prod(k)``."""
    x, k, s, pads, out = _pool_args(x, kernel_size, stride, padding)
    xp = pad_spatial(x, pads, 0.0)
    N, C = x.shape[:2]
    y = np.empty((N, C) + out, dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for o in np.ndindex(*out):
                total = 0.0
                for j in np.ndindex(*k):
                    total += xp[(n, c) + tuple(oi * si + ji for oi, si, ji in zip(o, s, j))]
                y[(n, c) + o] = total / np.prod(k)
    return y


def max_pool_backward_naive(dout, x, kernel_size, stride=None, padding=0):
    """Loop version of :func:`max_pool_backward`: route each ``dout`` entry to its window's first arg-max."""
    x, k, s, pads, out = _pool_args(x, kernel_size, stride, padding)
    dout = _check_dout(dout, x, out)
    xp = pad_spatial(x, pads, -np.inf)
    dxp = np.zeros(xp.shape, dtype=np.result_type(x.dtype, dout.dtype))
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            for o in np.ndindex(*out):
                best, where = -np.inf, None
                for j in np.ndindex(*k):
                    i = tuple(oi * si + ji for oi, si, ji in zip(o, s, j))
                    if where is None or xp[(n, c) + i] > best:
                        best, where = xp[(n, c) + i], i
                dxp[(n, c) + where] += dout[(n, c) + o]
    return np.ascontiguousarray(crop(dxp, pads))


def avg_pool_backward_naive(dout, x, kernel_size, stride=None, padding=0):
    """Loop version of :func:`avg_pool_backward`: each window element gets ``dout / prod(k)``."""
    x, k, s, pads, out = _pool_args(x, kernel_size, stride, padding)
    dout = _check_dout(dout, x, out)
    padded = tuple(n + pb + pa for n, (pb, pa) in zip(x.shape[2:], pads))
    dxp = np.zeros(x.shape[:2] + padded, dtype=np.result_type(x.dtype, dout.dtype))
    N, C = x.shape[:2]
    for n in range(N):
        for c in range(C):
            for o in np.ndindex(*out):
                for j in np.ndindex(*k):
                    i = tuple(oi * si + ji for oi, si, ji in zip(o, s, j))
                    dxp[(n, c) + i] += dout[(n, c) + o] / np.prod(k)
    return np.ascontiguousarray(crop(dxp, pads))
