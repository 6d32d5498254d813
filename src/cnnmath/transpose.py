"""Transposed convolution ("deconvolution", fractionally strided convolution), any number of spatial dims.

A transposed convolution is the adjoint of a convolution: it maps the *output* space of
:func:`cnnmath.conv` back to its *input* space, exactly as the input gradient of seed 004
eq. 9.13 does (the seed's ``h(K, H, s)`` in the encoder-decoder section). So it is
computed with the very same code as :func:`cnnmath.conv_input_grad`, and its backward
reuses :func:`cnnmath.conv` and :func:`cnnmath.conv_weight_grad`: the math lives once.

Shapes (channels-first, PyTorch's ``F.conv_transpose{1,2,3}d`` layout)::

    x   : (N, C_in, n_1, ..., n_D)
    w   : (C_in, C_out / groups, k_1, ..., k_D)      <- note: C_in first
    b   : (C_out,) or None
    out : (N, C_out, m_1, ..., m_D),
          m_i = (n_i - 1) s_i - p_before_i - p_after_i + d_i (k_i - 1) + output_padding_i + 1

Scatter form (0-based; ``c`` in group ``g = c // (C_in / groups)``)::

    out_padded[n, g C_out/groups + l, o s + j d] += x[n, c, o] w[c, l, j]

and the first ``p_before`` / last ``p_after`` entries of every spatial axis are dropped.
``output_padding`` adds extra positions at the end (only needed to pick among the
several input sizes a strided convolution maps to the same output size).
"""

from __future__ import annotations

import numpy as np

from . import _conv_paths as paths
from ._args import as_float_array, check_bias, check_x_w, is_int, result_dtype
from ._columns import pad_spatial
from ._geometry import conv_geometry, window_params
from .sizes import transposed_output_size

__all__ = ["conv_transpose", "conv_transpose_backward", "conv_transpose_naive"]


class _TGeometry:
    """Geometry of a transposed convolution, and of the convolution it is the adjoint of."""

    def __init__(self, x_shape, w_shape, stride, padding, output_padding, dilation, groups):
        ndim = len(x_shape) - 2
        if not is_int(groups) or groups < 1:
            raise ValueError(f"groups must be a positive int, got {groups!r}")
        c_in, c_out_g = int(w_shape[0]), int(w_shape[1])
        if x_shape[1] != c_in:
            raise ValueError(
                f"channels mismatch: x has C_in={x_shape[1]} channels but w of shape {tuple(w_shape)} "
                f"expects C_in = w.shape[0] = {c_in} (transposed weights are (C_in, C_out/groups, *kernel))"
            )
        if c_in % groups:
            raise ValueError(f"groups={groups} must divide the input channels C_in={c_in}")
        k = tuple(int(v) for v in w_shape[2:])
        if isinstance(padding, str):
            raise ValueError(
                f"padding of a transposed convolution must be an int, a tuple or (before, after) pairs, "
                f"got {padding!r}"
            )
        self.n = tuple(int(v) for v in x_shape[2:])
        self.m = transposed_output_size(self.n, k, stride, padding, output_padding, dilation)
        _, s, d, pads = window_params(ndim, k, stride, padding, dilation)
        self.c_out = c_out_g * groups
        # The forward convolution (C_out channels of size m -> C_in channels) whose adjoint this is.
        self.conv = conv_geometry((x_shape[0], self.c_out) + self.m, w_shape, s, pads, d, groups)
        # With output_padding >= stride that convolution yields a few more positions than n:
        # they read only the output_padding tail, and are zero-padded (forward) / cropped (backward).
        self.extra = tuple(o - n for o, n in zip(self.conv.out, self.n))

    def pad_x(self, x):
        if not any(self.extra):
            return x
        return pad_spatial(x, [(0, e) for e in self.extra])

    def crop(self, y):
        if not any(self.extra):
            return y
        return y[(slice(None), slice(None)) + tuple(slice(0, n) for n in self.n)]


def _check_x_w(x, w):
    return check_x_w(x, w, w_layout="(C_in, C_out/groups, *kernel)")


def conv_transpose(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Transposed convolution: the adjoint of :func:`cnnmath.conv`; ``torch.nn.functional.conv_transpose{1,2,3}d``.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
    w : array_like, shape (C_in, C_out / groups, *kernel)
        PyTorch's transposed layout (input channels first).
    b : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of D ints, >= 1
    padding : int, tuple of D ints, or tuple of D (before, after) pairs
        Removes ``p_before``/``p_after`` positions from each end of the output
        (the padding of the convolution this is the transpose of).
    output_padding : int or tuple of D ints
        Extra positions at the end of each output axis; must be smaller than stride
        or dilation (as in PyTorch).
    groups : int
        Must divide C_in.

    Returns
    -------
    out : ndarray, shape (N, C_out, *m)
        ``m_i = (n_i - 1) s_i - p_before - p_after + d_i (k_i - 1) + output_padding_i + 1``.
        Adjointness: for any ``z`` of the output's shape, ``<conv(z, w), x> == <z, conv_transpose(x, w)>``
        (same stride, padding, dilation and groups; no bias).
    """
    x, w = _check_x_w(x, w)
    tg = _TGeometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    dtype = result_dtype(x, w)  # the bias is cast to it (as torch requires matching dtypes)
    b = check_bias(b, tg.c_out, dtype)
    xe = tg.pad_x(x.astype(dtype, copy=False))
    out = paths.input_grad(xe, w, tg.conv, x.shape[0], dtype)
    if b is not None:
        out += b.reshape((-1,) + (1,) * (x.ndim - 2))
    return out


def conv_transpose_backward(dout, x, w, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Backward pass of :func:`conv_transpose`.

    Parameters
    ----------
    dout : array_like, shape (N, C_out, *m)
        Upstream gradient.
    x, w, stride, padding, output_padding, dilation, groups
        Exactly as passed to :func:`conv_transpose`.

    Returns
    -------
    dx : ndarray, shape (N, C_in, *spatial)
        ``conv(dout, w, stride, padding, dilation, groups)``: the adjoint of the adjoint is the
        convolution itself.
    dw : ndarray, shape (C_in, C_out / groups, *kernel)
        ``conv_weight_grad`` with the roles of input and upstream gradient swapped:
        ``dw[c, l, j] = sum_{n, o} x[n, c, o] dout_padded[n, g C_out/groups + l, o s + j d]``.
    db : ndarray, shape (C_out,)
        ``dout`` summed over the batch and every position.
    """
    x, w = _check_x_w(x, w)
    tg = _TGeometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    dout = as_float_array(dout, "dout")
    expected = (x.shape[0], tg.c_out) + tg.m
    if dout.shape != expected:
        raise ValueError(f"dout must have the output's shape {expected}, got {dout.shape}")
    dtype = result_dtype(dout, x, w)
    dout = dout.astype(dtype, copy=False)
    dx = np.ascontiguousarray(tg.crop(paths.forward(dout, w, tg.conv, dtype)))
    dw = paths.weight_grad(tg.pad_x(x.astype(dtype, copy=False)), dout, tg.conv, dtype)
    db = dout.sum(axis=(0,) + tuple(range(2, dout.ndim)))
    return dx, dw, db


def conv_transpose_naive(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Loop version of :func:`conv_transpose` in scatter form.

    Every input value ``x[n, c, o]`` is multiplied by the whole kernel ``w[c, l]`` and added
    into the output at ``o * s + j * d - p_before`` for each tap ``j``: the strided "stamp"
    picture of a transposed convolution. Positions that land outside the output are dropped.
    """
    x, w = _check_x_w(x, w)
    tg = _TGeometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    dtype = result_dtype(x, w)  # the bias is cast to it (as torch requires matching dtypes)
    b = check_bias(b, tg.c_out, dtype)
    s, d, pads, k = tg.conv.s, tg.conv.d, tg.conv.pads, tg.conv.k
    groups = tg.conv.groups
    cin_g, cout_g = x.shape[1] // groups, tg.c_out // groups
    out = np.zeros((x.shape[0], tg.c_out) + tg.m, dtype=dtype)
    for n in range(x.shape[0]):                       # every image
        for c in range(x.shape[1]):                   # every input channel
            g = c // cin_g                            # its group
            for o in np.ndindex(*tg.n):               # every input position
                for l in range(cout_g):               # every output channel of the group
                    for j in np.ndindex(*k):          # every kernel tap
                        pos = tuple(o[a] * s[a] + j[a] * d[a] - pads[a][0] for a in range(len(k)))
                        if all(0 <= pos[a] < tg.m[a] for a in range(len(k))):
                            out[(n, g * cout_g + l) + pos] += x[(n, c) + o] * w[(c, l) + j]
    if b is not None:
        out += b.reshape((-1,) + (1,) * (x.ndim - 2))
    return out
