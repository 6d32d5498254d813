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

from ._args import as_float_array, check_rank, int_tuple, resolve_padding
from .sizes import padded_output_size
from .windows import pad_spatial

__all__ = ["im2col", "col2im"]


def _tap_slices(offset, stride, dilation, out):
    """Slices of the padded input read by kernel offset ``offset`` at every output position."""
    return tuple(slice(j * d, j * d + s * (o - 1) + 1, s)
                 for j, s, d, o in zip(offset, stride, dilation, out))


def _window_view(src, lead, kernel_size, stride, dilation, out):
    """Read-only view ``(*src.shape[:lead], *k, *out)`` of every window of the padded ``src``.

    The kernel-offsets-first order of the columns (:func:`cnnmath.sliding_windows` puts the
    output positions first): ``view[..., j, o] = src[..., o * s + j * d]``.
    """
    st = src.strides[lead:]
    shape = src.shape[:lead] + tuple(kernel_size) + tuple(out)
    strides = (src.strides[:lead] + tuple(a * d for a, d in zip(st, dilation))
               + tuple(a * s for a, s in zip(st, stride)))
    if src.flags.c_contiguous:  # cheaper than as_strided, same view
        view = np.ndarray(shape, src.dtype, buffer=src, strides=strides)
        view.flags.writeable = False
        return view
    return np.lib.stride_tricks.as_strided(src, shape=shape, strides=strides, writeable=False)


def _im2col_padded(xp, kernel_size, stride, dilation, out):
    """im2col of an already padded ``xp``: contiguous (N, C, *k, *out) array.

    One copy of the read-only sliding-window view, reordered so that the kernel
    offsets come before the output positions (the view itself is (N, C, *out, *k)).
    """
    n, c = xp.shape[:2]
    k = tuple(kernel_size)
    ndim = len(k)
    if all(v == 1 for v in k):  # 1x1 kernels: the columns are the (strided) input itself
        view = xp[(slice(None), slice(None)) + _tap_slices((0,) * ndim, stride, dilation, out)]
        return np.ascontiguousarray(view).reshape((n, c) + k + tuple(out))
    return np.ascontiguousarray(_window_view(xp, 2, k, stride, dilation, out))


def _col2im_add(cols, xp, kernel_size, stride, dilation, out):
    """Add the columns ``cols`` (N, C, *k, *out) into the padded array ``xp`` in place (the scatter)."""
    for tap in np.ndindex(*kernel_size):
        xp[(slice(None), slice(None)) + _tap_slices(tap, stride, dilation, out)] += \
            cols[(slice(None), slice(None)) + tap]
    return xp


def _col2im_padded(cols, padded_shape, kernel_size, stride, dilation, out):
    """Adjoint of :func:`_im2col_padded`: cols (N, C, *k, *out) -> padded input (N, C, *padded)."""
    xp = np.zeros(padded_shape, dtype=cols.dtype)
    return _col2im_add(cols, xp, tuple(kernel_size), stride, dilation, out)


def _geometry(x_shape, kernel_size, stride, padding, dilation):
    ndim = len(x_shape) - 2
    k = int_tuple(kernel_size, ndim, "kernel_size")
    s = int_tuple(stride, ndim, "stride")
    d = int_tuple(dilation, ndim, "dilation")
    pads = resolve_padding(padding, ndim, k, s, d)
    out = padded_output_size(x_shape[2:], k, s, pads, d)
    return k, s, d, pads, out


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
    k, s, d, pads, out = _geometry(x.shape, kernel_size, stride, padding, dilation)
    cols = _im2col_padded(pad_spatial(x, pads), k, s, d, out)
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
    k, s, d, pads, out = _geometry(x_shape, kernel_size, stride, padding, dilation)
    n, c = x_shape[:2]
    expected = (n, c * int(np.prod(k)), int(np.prod(out)))
    if cols.shape != expected:
        raise ValueError(
            f"cols must have shape {expected} for x_shape={x_shape}, kernel_size={k}, "
            f"stride={s}, padding={padding!r}, dilation={d}; got {cols.shape}"
        )
    padded = (n, c) + tuple(v + pb + pa for v, (pb, pa) in zip(x_shape[2:], pads))
    xp = _col2im_padded(cols.reshape((n, c) + k + out), padded, k, s, d, out)
    return _crop(xp, pads)


def _crop(xp, pads):
    """Remove ``(before, after)`` padding from the trailing spatial axes (a view)."""
    if all(pb == 0 and pa == 0 for pb, pa in pads):
        return xp
    index = (slice(None), slice(None)) + tuple(slice(pb, xp.shape[2 + i] - pa) for i, (pb, pa) in enumerate(pads))
    return xp[index]
