"""im2col and col2im: turning a convolution into one matrix product (seed 001, "im2col/GEMM/col2im").

Column layout
-------------
For an input ``x`` of shape ``(N, C, *spatial)`` (``D = len(spatial)`` spatial
dimensions), a kernel of size ``k = (k_1, ..., k_D)`` and an output of size
``out = (o_1, ..., o_D)``, :func:`im2col` returns ``cols`` of shape::

    (N, C * prod(k), prod(out))

with rows ordered ``(c, j_1, ..., j_D)`` and columns ordered ``(o_1, ..., o_D)``,
both in C (row-major) order, and element (0-based, ``xp`` = zero-padded ``x``)::

    cols[n, (c, j), (o)] = xp[n, c, o_1 s_1 + j_1 d_1, ..., o_D s_D + j_D d_D]

This is Caffe's / CS231n's layout, one ``(C k_1...k_D) x (o_1...o_D)`` matrix per
image. Its rows match a weight tensor ``w`` of shape ``(C_out, C, *k)`` flattened
to ``(C_out, C * prod(k))``, so that the convolution of seed 004 eq. 9.7/9.8 is::

    conv(x, w)[n] = w.reshape(C_out, -1) @ cols[n]      # (C_out, prod(out))

already in channels-first order: no transpose of the result is needed.

:func:`col2im` is the exact adjoint (transpose) of :func:`im2col`: it scatters
every column entry back to the input position it was read from, *adding* where
windows overlap, and drops what landed in the padding. Hence for all ``x``, ``c``::

    <im2col(x), c> == <x, col2im(c, x.shape, ...)>

:func:`im2col` is a single copy of a read-only strided window view (no Python loop);
:func:`col2im` loops over the ``prod(k)`` kernel offsets only (one strided add per
offset), never over output positions.
"""

from __future__ import annotations

import numpy as np

from ._args import as_float_array, check_rank
from ._columns import col2im_padded, crop, im2col_padded, pad_spatial
from ._geometry import window_geometry

__all__ = ["im2col", "col2im"]


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold every (dilated, strided) window of ``x`` into a column.

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
        Channels-first input with ``D >= 1`` spatial dimensions.
    kernel_size, stride, dilation : int or tuple of D ints
        Window size, step and tap spacing (dilation counts from 1, as in PyTorch).
    padding : int, tuple, tuple of (before, after) pairs, "valid", "same" or "full"
        Zero padding, as accepted by :func:`cnnmath.conv`.

    Returns
    -------
    cols : ndarray, shape (N, C * prod(kernel_size), prod(out))
        ``cols[n, (c, j), (o)] = xp[n, c, o * s + j * d]`` (see the module docstring),
        with ``out[i] = floor((n_i + p_before + p_after - d_i (k_i - 1) - 1) / s_i) + 1``.
        Same dtype as ``x`` (float32 stays float32, integers become float64).

    This is torch's ``F.unfold`` generalised to any number of spatial dimensions
    (same row and column order).
    """
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=3, layout="(N, C, *spatial)")
    geo = window_geometry(x.shape[2:], kernel_size, stride, padding, dilation)
    k, s, d, pads, out = geo.k, geo.s, geo.d, geo.pads, geo.out
    cols = im2col_padded(pad_spatial(x, pads), k, s, d, out)
    n, c = x.shape[:2]
    return cols.reshape(n, c * int(np.prod(k)), int(np.prod(out)))


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns back into an input-shaped array, summing overlaps: the adjoint of :func:`im2col`.

    Parameters
    ----------
    cols : array_like, shape (N, C * prod(kernel_size), prod(out))
        Columns in the layout produced by :func:`im2col`.
    x_shape : tuple of int
        ``(N, C, *spatial)``, the shape of the input :func:`im2col` was applied to.
    kernel_size, stride, padding, dilation
        As for :func:`im2col`.

    Returns
    -------
    x : ndarray, shape x_shape
        ``x[n, c, i] = sum over (o, j) with o * s + j * d - p_before == i of cols[n, (c, j), (o)]``;
        entries that fall into the padding are discarded. This is torch's ``F.fold``
        for any number of spatial dimensions, and the input-gradient scatter of a
        convolution (seed 004 eq. 9.13).
    """
    cols = as_float_array(cols, "cols")
    x_shape = tuple(int(v) for v in x_shape)
    if len(x_shape) < 3:
        raise ValueError(f"x_shape must be (N, C, *spatial) with at least one spatial dimension, got {x_shape}")
    geo = window_geometry(x_shape[2:], kernel_size, stride, padding, dilation)
    k, s, d, pads, out = geo.k, geo.s, geo.d, geo.pads, geo.out
    n, c = x_shape[:2]
    expected = (n, c * int(np.prod(k)), int(np.prod(out)))
    if cols.shape != expected:
        raise ValueError(
            f"cols must have shape {expected} for x_shape={x_shape}, kernel_size={k}, "
            f"stride={s}, padding={padding!r}, dilation={d}; got {cols.shape}"
        )
    xp = col2im_padded(cols.reshape((n, c) + k + out), (n, c) + geo.padded, k, s, d, out)
    return crop(xp, pads)
