"""Locally connected layers (seed 004 eq. 9.9) and tiled convolution (eq. 9.10), any rank.

Both are convolution with less weight sharing. Seed 004 writes them 1-based for 2-D;
here they are 0-based, channels-first, with stride ``s``, zero padding and dilation ``d``
(multi-indices ``o`` over output positions, ``j`` over kernel offsets)::

    locally connected (9.9):  Z[n, l, o] = sum_{i, j} Xp[n, i, o s + j d] W[l, o, i, j]          + b[l]
    tiled (9.10):             Z[n, l, o] = sum_{i, j} Xp[n, i, o s + j d] K[l, o mod t, i, j]    + b[l]
    convolution (9.8):        Z[n, l, o] = sum_{i, j} Xp[n, i, o s + j d] K[l, i, j]             + b[l]

Layouts
-------
* ``x``: ``(N, C_in, *spatial)``.
* locally connected weights ``W``: ``(C_out, *out, C_in, *k)`` -- seed 004's
  ``W in R^{l x x x y x i x j x k}``: one kernel per output position ``o``.
* tiled kernels ``K``: ``(C_out, *t, C_in, *k)`` -- seed 004's ``K in R^{l x t x t x i x j x k}``
  with a tile size per spatial dimension; output position ``o`` uses ``K[:, o mod t]``.
* bias ``b``: ``(C_out,)``, *one per output channel* (shared over positions, as in
  convolution; the seed's formulas have no bias). Keras' ``LocallyConnected2D`` uses one
  bias per position and channel instead; add it yourself if you want that.
* output: ``(N, C_out, *out)`` with ``out = floor((n + p_before + p_after - d (k - 1) - 1) / s) + 1``.

Limits: ``t = 1`` gives ordinary convolution (full sharing); ``t = out`` gives a locally
connected layer (no sharing). Tiled convolution is implemented exactly that way: the
tile kernels are expanded to one kernel per output position, ``W[:, o] = K[:, o mod t]``,
and the locally connected layer runs; its backward sums the per-position gradients of
positions that share a kernel.
"""

from __future__ import annotations

import numpy as np

from ._args import as_float_array, check_rank, result_dtype
from ._columns import pad_spatial, sliding_windows
from ._geometry import window_geometry, window_params
from .im2col import col2im

__all__ = [
    "locally_connected",
    "locally_connected_backward",
    "locally_connected_naive",
    "tiled_conv",
    "tiled_conv_backward",
    "tiled_conv_naive",
    "tile_kernels",
    "locally_connected_params",
    "tiled_conv_params",
]


def _lc_args(x, w, b, stride, padding, dilation, wname="w"):
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=3, layout="(N, C_in, *spatial)")
    ndim = x.ndim - 2
    w = as_float_array(w, wname)
    check_rank(w, wname, ndim=2 + 2 * ndim,
               layout=f"(C_out, *out, C_in, *kernel) with {ndim} spatial dims" if wname == "w"
               else f"(C_out, *tile, C_in, *kernel) with {ndim} spatial dims")
    c_in = w.shape[1 + ndim]
    if c_in != x.shape[1]:
        raise ValueError(
            f"input channels mismatch: x has {x.shape[1]} channels but {wname} expects C_in={c_in} "
            f"({wname}.shape={w.shape})"
        )
    k = w.shape[2 + ndim:]
    geo = window_geometry(x.shape[2:], k, stride, padding, dilation)
    k, s, d, pads, out = geo.k, geo.s, geo.d, geo.pads, geo.out
    if b is not None:
        b = as_float_array(b, "b")
        if b.shape != (w.shape[0],):
            raise ValueError(f"b must have shape (C_out,) = ({w.shape[0]},), got {b.shape}")
    return x, w, b, k, s, d, pads, out


def _check_positions(w, out):
    ndim = len(out)
    if tuple(w.shape[1:1 + ndim]) != tuple(out):
        raise ValueError(
            f"w must hold one kernel per output position: w.shape[1:{1 + ndim}] must be the output size "
            f"{tuple(out)}, got w.shape={w.shape}"
        )


def _columns(x, k, s, d, pads, dtype):
    """Windows as a batch of matrices: (P, N, C_in * prod(k)), plus the padded shape."""
    xp = pad_spatial(x, pads, 0.0)
    win = sliding_windows(xp, k, s, d)  # (N, C_in, *out, *k)
    ndim = len(k)
    n, c = x.shape[:2]
    out = win.shape[2:2 + ndim]
    order = tuple(range(2, 2 + ndim)) + (0, 1) + tuple(range(2 + ndim, 2 + 2 * ndim))
    cols = win.transpose(order).reshape(int(np.prod(out)), n, c * int(np.prod(k)))
    return cols.astype(dtype, copy=False), xp.shape


def _weight_matrices(w, ndim):
    """(C_out, *out, C_in, *k) -> (P, C_in * prod(k), C_out)."""
    c_out = w.shape[0]
    out = w.shape[1:1 + ndim]
    wt = np.moveaxis(w, 0, -1)  # (*out, C_in, *k, C_out)
    return wt.reshape(int(np.prod(out)), -1, c_out)


def locally_connected(x, w, b=None, stride=1, padding=0, dilation=1):
    """Locally connected layer: a convolution without weight sharing (seed 004 eq. 9.9).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
        Input, any number D >= 1 of spatial dimensions.
    w : array_like, shape (C_out, *out, C_in, *k)
        One kernel per output position ``o`` (seed: ``W_{l,x,y,i,j,k}``); ``out`` must
        equal the output size below.
    b : array_like, shape (C_out,), optional
        Bias per output channel.
    stride, dilation : int or tuple of D ints, default 1
    padding : int, tuple, (before, after) pairs, "valid", "same" or "full", default 0
        Zero padding, as in :func:`cnnmath.conv`.

    Returns
    -------
    z : ndarray, shape (N, C_out, *out)
        ``z[n, l, o] = sum_{i, j} xp[n, i, o s + j d] w[l, o, i, j] + b[l]`` with
        ``out = floor((n + p_before + p_after - d (k - 1) - 1) / s) + 1``. One batched
        matrix product over positions: ``(P, N, C_in prod(k)) @ (P, C_in prod(k), C_out)``.
    """
    x, w, b, k, s, d, pads, out = _lc_args(x, w, b, stride, padding, dilation)
    _check_positions(w, out)
    dtype = result_dtype(x, w) if b is None else result_dtype(x, w, b)
    ndim = len(k)
    cols, _ = _columns(x, k, s, d, pads, dtype)
    z = np.matmul(cols, _weight_matrices(w, ndim).astype(dtype, copy=False))  # (P, N, C_out)
    z = z.reshape(tuple(out) + z.shape[1:])
    z = np.moveaxis(np.moveaxis(z, ndim, 0), ndim + 1, 1)  # (N, C_out, *out)
    if b is not None:
        z = z + b.astype(dtype, copy=False).reshape((-1,) + (1,) * ndim)
    return np.ascontiguousarray(z, dtype=dtype)


def locally_connected_backward(dout, x, w, stride=1, padding=0, dilation=1):
    """Gradients of :func:`locally_connected` with upstream gradient ``dout``.

    Parameters
    ----------
    dout : array_like, shape (N, C_out, *out)
    x : array_like, shape (N, C_in, *spatial)
    w : array_like, shape (C_out, *out, C_in, *k)
    stride, padding, dilation
        As in the forward call.

    Returns
    -------
    dx : ndarray, shape (N, C_in, *spatial)
        ``dx[n, i, q] = sum_{l, o, j : o s + j d = q + p} dout[n, l, o] w[l, o, i, j]``
    dw : ndarray, shape (C_out, *out, C_in, *k)
        ``dw[l, o, i, j] = sum_n dout[n, l, o] xp[n, i, o s + j d]`` (no sum over ``o``:
        nothing is shared, unlike the convolution's eq. 9.11)
    db : ndarray, shape (C_out,)
        ``db[l] = sum_{n, o} dout[n, l, o]``
    """
    x, w, _, k, s, d, pads, out = _lc_args(x, w, None, stride, padding, dilation)
    _check_positions(w, out)
    ndim = len(k)
    dout = as_float_array(dout, "dout")
    expected = (x.shape[0], w.shape[0]) + tuple(out)
    if dout.shape != expected:
        raise ValueError(f"dout must have the output's shape {expected}, got {dout.shape}")
    dtype = result_dtype(x, w, dout)
    cols, _ = _columns(x, k, s, d, pads, dtype)
    wm = _weight_matrices(w, ndim).astype(dtype, copy=False)
    g = np.moveaxis(dout.astype(dtype, copy=False), (0, 1), (ndim, ndim + 1))  # (*out, N, C_out)
    g = g.reshape(cols.shape[0], x.shape[0], w.shape[0])  # (P, N, C_out)
    dwm = np.matmul(cols.transpose(0, 2, 1), g)  # (P, C_in prod k, C_out)
    dw = np.moveaxis(dwm.reshape(tuple(out) + w.shape[1 + ndim:] + (w.shape[0],)), -1, 0)
    dcols = np.matmul(g, wm.transpose(0, 2, 1))  # (P, N, C_in prod k)
    dcols = dcols.reshape(tuple(out) + x.shape[:2] + tuple(k))  # (*out, N, C_in, *k)
    order = tuple(range(ndim, 2 * ndim + 2)) + tuple(range(ndim))  # -> (N, C_in, *k, *out)
    dcols = dcols.transpose(order).reshape(x.shape[0], -1, cols.shape[0])  # im2col layout
    dx = np.ascontiguousarray(col2im(dcols, x.shape, k, s, pads, d))  # scatter-add, overlaps sum
    db = dout.sum(axis=(0,) + tuple(range(2, 2 + ndim))).astype(dtype, copy=False)
    return dx, np.ascontiguousarray(dw), db


def locally_connected_naive(x, w, b=None, stride=1, padding=0, dilation=1):
    """Loop version of :func:`locally_connected`: eq. 9.9 written out, 0-based."""
    x, w, b, k, s, d, pads, out = _lc_args(x, w, b, stride, padding, dilation)
    _check_positions(w, out)
    xp = pad_spatial(x, pads, 0.0)
    N, C_in = x.shape[:2]
    C_out = w.shape[0]
    z = np.zeros((N, C_out) + tuple(out), dtype=result_dtype(x, w))
    for n in range(N):
        for l in range(C_out):  # noqa: E741 (seed 004's name for the output channel)
            for o in np.ndindex(*out):
                total = 0.0 if b is None else b[l]
                for i in range(C_in):
                    for j in np.ndindex(*k):
                        q = tuple(oo * ss + jj * dd for oo, ss, jj, dd in zip(o, s, j, d))
                        total += xp[(n, i) + q] * w[(l,) + o + (i,) + j]
                z[(n, l) + o] = total
    return z


# ----------------------------------------------------------------------------------------
# Tiled convolution (eq. 9.10)
# ----------------------------------------------------------------------------------------

def tile_kernels(k, out_size):
    """Expand tiled kernels ``(C_out, *t, C_in, *k)`` to per-position weights ``(C_out, *out, C_in, *k)``.

    ``W[:, o] = K[:, o mod t]`` (eq. 9.10 as a locally connected layer).
    """
    kk = as_float_array(k, "k")
    ndim = len(out_size)
    check_rank(kk, "k", ndim=2 + 2 * ndim, layout=f"(C_out, *tile, C_in, *kernel) with {ndim} spatial dims")
    w = kk
    for axis, (o, t) in enumerate(zip(out_size, kk.shape[1:1 + ndim])):
        w = np.take(w, np.arange(o) % t, axis=1 + axis)
    return w


def _tiled_args(x, k, b, stride, padding, dilation):
    x, k, b, ksz, s, d, pads, out = _lc_args(x, k, b, stride, padding, dilation, wname="k")
    return x, k, b, out


def tiled_conv(x, k, b=None, stride=1, padding=0, dilation=1):
    """Tiled convolution: ``t`` kernels per spatial dimension, used in turn (seed 004 eq. 9.10).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
    k : array_like, shape (C_out, *t, C_in, *kernel)
        The tile of kernels; output position ``o`` uses ``k[:, o mod t]`` (per dimension).
        ``t = (1, ..., 1)`` is an ordinary convolution, ``t = out`` a locally connected layer.
    b : array_like, shape (C_out,), optional
        Bias per output channel.
    stride, padding, dilation
        As in :func:`cnnmath.conv`.

    Returns
    -------
    z : ndarray, shape (N, C_out, *out)
        ``z[n, l, o] = sum_{i, j} xp[n, i, o s + j d] k[l, o mod t, i, j] + b[l]``, with
        ``out = floor((n + p_before + p_after - d (kernel - 1) - 1) / s) + 1``.
    """
    x, kk, b, out = _tiled_args(x, k, b, stride, padding, dilation)
    return locally_connected(x, tile_kernels(kk, out), b, stride, padding, dilation)


def tiled_conv_backward(dout, x, k, stride=1, padding=0, dilation=1):
    """Gradients of :func:`tiled_conv`: ``(dx, dk, db)``.

    ``dk[l, r, i, j] = sum_{o : o mod t = r} dw[l, o, i, j]`` where ``dw`` is the locally
    connected weight gradient: positions sharing a kernel add their gradients (eq. 9.11
    restricted to one residue class of positions). ``dx``, ``db`` as for
    :func:`locally_connected_backward`; shapes ``(N, C_in, *spatial)``,
    ``(C_out, *t, C_in, *kernel)``, ``(C_out,)``.
    """
    x, kk, _, out = _tiled_args(x, k, None, stride, padding, dilation)
    dx, dw, db = locally_connected_backward(dout, x, tile_kernels(kk, out), stride, padding, dilation)
    ndim = len(out)
    dk = dw
    for axis, (o, t) in enumerate(zip(out, kk.shape[1:1 + ndim])):
        ax = 1 + axis
        parts = [np.take(dk, np.arange(r, o, t), axis=ax).sum(axis=ax, keepdims=True) for r in range(t)]
        dk = np.concatenate(parts, axis=ax)  # residues r >= o (t larger than out) get zero gradient
    return dx, dk.astype(dw.dtype, copy=False), db


def tiled_conv_naive(x, k, b=None, stride=1, padding=0, dilation=1):
    """Loop version of :func:`tiled_conv`: eq. 9.10 written out, 0-based."""
    x, kk, b, out = _tiled_args(x, k, b, stride, padding, dilation)
    ndim = len(out)
    ksz = kk.shape[2 + ndim:]
    t = kk.shape[1:1 + ndim]
    _, s, d, pads = window_params(ndim, ksz, stride, padding, dilation)
    xp = pad_spatial(x, pads, 0.0)
    N, C_in = x.shape[:2]
    C_out = kk.shape[0]
    z = np.zeros((N, C_out) + tuple(out), dtype=result_dtype(x, kk))
    for n in range(N):
        for l in range(C_out):  # noqa: E741 (seed 004's name for the output channel)
            for o in np.ndindex(*out):
                r = tuple(oo % tt for oo, tt in zip(o, t))  # which kernel of the tile
                total = 0.0 if b is None else b[l]
                for i in range(C_in):
                    for j in np.ndindex(*ksz):
                        q = tuple(oo * ss + jj * dd for oo, ss, jj, dd in zip(o, s, j, d))
                        total += xp[(n, i) + q] * kk[(l,) + r + (i,) + j]
                z[(n, l) + o] = total
    return z


# ----------------------------------------------------------------------------------------
# Parameter counts
# ----------------------------------------------------------------------------------------

def _pos_ints(value, name):
    vals = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not vals or any(not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1 for v in vals):
        raise ValueError(f"{name} must be a positive int or a tuple of positive ints, got {value!r}")
    return tuple(int(v) for v in vals)


def _per_dim(a, a_name, b, b_name, ndim):
    """Expand two int-or-tuple arguments to tuples of the same length (ints repeat)."""
    ta, tb = _pos_ints(a, a_name), _pos_ints(b, b_name)
    scalar_a, scalar_b = not isinstance(a, (tuple, list)), not isinstance(b, (tuple, list))
    if scalar_a and scalar_b:
        if not isinstance(ndim, (int, np.integer)) or ndim < 1:
            raise ValueError(f"ndim must be a positive int, got {ndim!r}")
        return ta * ndim, tb * ndim
    if scalar_a:
        ta = ta * len(tb)
    if scalar_b:
        tb = tb * len(ta)
    if len(ta) != len(tb):
        raise ValueError(f"{a_name}={a!r} and {b_name}={b!r} have different numbers of spatial dimensions")
    return ta, tb


def locally_connected_params(c_in, c_out, kernel_size, out_size, bias=True, ndim=2):
    """Parameters of a locally connected layer: ``C_out * prod(out) * C_in * prod(k) (+ C_out)``.

    ``kernel_size`` and ``out_size`` are ints or tuples with one entry per spatial
    dimension; an int is repeated to match the other, and when both are ints they are
    used for ``ndim`` (default 2) dimensions. The bias is one per output channel, as in
    :func:`locally_connected`.

    >>> locally_connected_params(3, 8, 3, 30)  # vs 8*3*9 + 8 = 224 for a 3x3 conv
    194408
    """
    c_in, = _pos_ints(c_in, "c_in")
    c_out, = _pos_ints(c_out, "c_out")
    k, out = _per_dim(kernel_size, "kernel_size", out_size, "out_size", ndim)
    return c_out * int(np.prod(out)) * c_in * int(np.prod(k)) + (c_out if bias else 0)


def tiled_conv_params(c_in, c_out, kernel_size, tile, bias=True, ndim=2):
    """Parameters of a tiled convolution: ``C_out * prod(t) * C_in * prod(k) (+ C_out)``.

    ``t = 1`` gives the convolution's ``k^2 C_in C_out + C_out`` (seed 001). Ints and
    tuples are expanded as in :func:`locally_connected_params`.

    >>> tiled_conv_params(3, 8, 3, 1), tiled_conv_params(3, 8, 3, 2)
    (224, 872)
    """
    c_in, = _pos_ints(c_in, "c_in")
    c_out, = _pos_ints(c_out, "c_out")
    k, t = _per_dim(kernel_size, "kernel_size", tile, "tile", ndim)
    return c_out * int(np.prod(t)) * c_in * int(np.prod(k)) + (c_out if bias else 0)
