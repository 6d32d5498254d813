"""Cheaper convolutions: depthwise-separable convolution and the (2+1)D factorization of a 3D kernel.

Both are compositions of :func:`cnnmath.conv` (no new convolution code), each
with its backward pass and exact parameter and multiply-add (MAC) counts built
on :mod:`cnnmath.accounting`.

Depthwise-separable convolution (MobileNet; seed 001 section 8)
---------------------------------------------------------------
A standard convolution mixes space and channels at once with
``C_out x C_in x k^2`` weights. The separable version factors it into

1. a *depthwise* convolution, ``groups = C_in``: each input channel is filtered
   by its own ``M`` spatial kernels (``M`` = depth multiplier, usually 1),
   weights ``(C_in M, 1, k, k)``;
2. a *pointwise* (1x1) convolution mixing the ``C_in M`` channels into ``C_out``,
   weights ``(C_out, C_in M, 1, 1)``.

Weights (``M = 1``, no biases): ``C_in k^2 + C_in C_out`` instead of
``C_in C_out k^2``; MACs per output position likewise; their ratio is

    (C_in k^2 + C_in C_out) / (C_in C_out k^2) = 1 / C_out + 1 / k^2.

.. admonition:: Errata (seed 001, section 8)

   The seed writes the separable cost as ``C k^2 + C_in C_out``. The ``C`` there
   is ``C_in`` (one ``k x k`` filter per *input* channel, depth multiplier 1), the
   count ignores biases (with them: ``+ C_in + C_out`` instead of ``+ C_out``), and
   multiplying by the number of output positions turns the weight count into the
   MAC count only because both stages run at the output resolution.

(2+1)D factorization (R(2+1)D; seed 000 section 3)
--------------------------------------------------
A 3D kernel ``t x k x k`` over (time, height, width) has ``t k^2 C_in C_out``
weights and costs ``T' H' W' t k^2 C_in C_out`` MACs (``T' H' W'`` = output
size; seed 000 section 3, whose symbols were lost in extraction). The (2+1)D
block replaces it by a spatial convolution with kernel ``(1, k, k)`` into ``M``
intermediate channels followed by a temporal convolution with kernel
``(t, 1, 1)``. Without a nonlinearity in between the block *is* a 3D convolution
whose kernel has rank at most ``M`` in the (time) x (space, C_in) sense
(:func:`conv2plus1d_equivalent_kernel`); R(2+1)D inserts a ReLU (``relu=True``),
doubling the nonlinearities for the same parameter budget, and chooses

    M = floor(t k^2 C_in C_out / (k^2 C_in + t C_out))

so that both have about the same number of weights
(:func:`conv2plus1d_matching_channels`).
"""

from __future__ import annotations

from fractions import Fraction
from math import prod

import numpy as np

from . import accounting as _acc
from ._args import as_float_array, check_rank, int_tuple
from ._geometry import window_params

__all__ = [
    "depthwise_separable_conv",
    "depthwise_separable_conv_backward",
    "standard_conv_params",
    "depthwise_separable_params",
    "standard_conv_macs",
    "depthwise_separable_macs",
    "separable_cost_ratio",
    "conv2plus1d",
    "conv2plus1d_backward",
    "conv2plus1d_equivalent_kernel",
    "conv3d_params",
    "conv2plus1d_params",
    "conv3d_macs",
    "conv2plus1d_macs",
    "conv2plus1d_matching_channels",
]


def _conv_ops():
    from .conv import conv, conv_backward

    return conv, conv_backward


# ---------------------------------------------------------------------------------------------
# Depthwise-separable convolution
# ---------------------------------------------------------------------------------------------

def _separable_weights(x, w_depthwise, w_pointwise):
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=3, layout="(N, C_in, *spatial)")
    nd = x.ndim - 2
    c_in = x.shape[1]
    wd = as_float_array(w_depthwise, "w_depthwise")
    if wd.ndim != nd + 2 or wd.shape[1] != 1:
        raise ValueError(f"w_depthwise must have shape (C_in * M, 1, *kernel) with {nd} kernel dims for x of "
                         f"shape {x.shape}, got {wd.shape}")
    if wd.shape[0] % c_in:
        raise ValueError(f"w_depthwise has {wd.shape[0]} filters, not a multiple of the input channels "
                         f"C_in={c_in} (it must be C_in * depth_multiplier)")
    wp = as_float_array(w_pointwise, "w_pointwise")
    if wp.ndim == 2:
        wp = wp.reshape(wp.shape + (1,) * nd)
    if wp.ndim != nd + 2 or wp.shape[2:] != (1,) * nd or wp.shape[1] != wd.shape[0]:
        raise ValueError(f"w_pointwise must have shape (C_out, C_in * M = {wd.shape[0]}, {', '.join(['1'] * nd)}) "
                         f"or (C_out, {wd.shape[0]}), got {np.shape(w_pointwise)} (channels of the depthwise "
                         f"output: {wd.shape[0]})")
    return x, wd, wp


def depthwise_separable_conv(x, w_depthwise, w_pointwise, b_depthwise=None, b_pointwise=None, stride=1,
                             padding=0, dilation=1):
    """Depthwise convolution (``groups = C_in``) followed by a pointwise 1x1 convolution.

    ``h = conv(x, w_depthwise, b_depthwise, stride, padding, dilation, groups=C_in)``,
    ``y = conv(h, w_pointwise, b_pointwise)``. No nonlinearity in between (MobileNet
    puts batch norm and ReLU there; compose them yourself).

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
    w_depthwise : array_like, shape (C_in * M, 1, *kernel)
        ``M`` (depth multiplier) is inferred as ``w_depthwise.shape[0] // C_in``;
        filter ``c M + m`` sees input channel ``c`` only.
    w_pointwise : array_like, shape (C_out, C_in * M, 1, ..., 1) or (C_out, C_in * M)
    b_depthwise : array_like, shape (C_in * M,), optional
    b_pointwise : array_like, shape (C_out,), optional
    stride, padding, dilation
        Of the depthwise stage, as for :func:`cnnmath.conv`.

    Returns
    -------
    ndarray, shape (N, C_out, *out)
        ``out`` from :func:`cnnmath.output_size` of the depthwise stage.
    """
    conv, _ = _conv_ops()
    x, wd, wp = _separable_weights(x, w_depthwise, w_pointwise)
    h = conv(x, wd, b_depthwise, stride, padding, dilation, groups=x.shape[1])
    return conv(h, wp, b_pointwise)


def depthwise_separable_conv_backward(dout, x, w_depthwise, w_pointwise, b_depthwise=None, stride=1, padding=0,
                                      dilation=1):
    """Gradients of :func:`depthwise_separable_conv` (the intermediate is recomputed).

    Parameters
    ----------
    dout : array_like, shape (N, C_out, *out)
    x, w_depthwise, w_pointwise, b_depthwise, stride, padding, dilation
        As passed to the forward (``b_depthwise`` is needed: it shifts the
        intermediate that the pointwise weights see).

    Returns
    -------
    dx : ndarray, shape of ``x``
    dw_depthwise : ndarray, shape (C_in * M, 1, *kernel)
    dw_pointwise : ndarray, shape of ``w_pointwise`` as given
    db_depthwise : ndarray, shape (C_in * M,)
    db_pointwise : ndarray, shape (C_out,)
    """
    conv, conv_backward = _conv_ops()
    x, wd, wp = _separable_weights(x, w_depthwise, w_pointwise)
    g = x.shape[1]
    h = conv(x, wd, b_depthwise, stride, padding, dilation, groups=g)
    dh, dwp, dbp = conv_backward(dout, h, wp)
    dx, dwd, dbd = conv_backward(dh, x, wd, stride, padding, dilation, groups=g)
    return dx, dwd, dwp.reshape(np.shape(w_pointwise)), dbd, dbp


def _ndim_of(kernel_size, ndim):
    if ndim is None:
        return len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 2
    return ndim


def standard_conv_params(c_in, c_out, kernel_size, ndim=None, bias=True):
    """Parameters of a standard convolution: ``C_out C_in k^D (+ C_out)``.

    ``kernel_size`` is an int (cube kernel in ``ndim`` dims, default 2) or a tuple.
    """
    return _acc.conv_params(c_in, c_out, kernel_size, 1, bias, ndim=_ndim_of(kernel_size, ndim))


def _multiplier(depth_multiplier):
    return _acc._positive(depth_multiplier, "depth_multiplier")


def depthwise_separable_params(c_in, c_out, kernel_size, depth_multiplier=1, ndim=None, bias=True):
    """Parameters of a depthwise-separable convolution.

    ``C_in M k^D (+ C_in M)`` depthwise plus ``C_in M C_out (+ C_out)`` pointwise.
    With ``M = 1`` and no biases: seed 001's ``C k^2 + C_in C_out`` (``C = C_in``).

    Examples
    --------
    >>> depthwise_separable_params(32, 64, 3, bias=False), standard_conv_params(32, 64, 3, bias=False)
    (2336, 18432)
    """
    m = _multiplier(depth_multiplier)
    nd = _ndim_of(kernel_size, ndim)
    return (_acc.conv_params(c_in, c_in * m, kernel_size, groups=c_in, bias=bias, ndim=nd)
            + _acc.conv_params(c_in * m, c_out, 1, bias=bias, ndim=nd))


def standard_conv_macs(in_shape, c_out, kernel_size, stride=1, padding=0, dilation=1):
    """MACs of a standard convolution on an input ``(C_in, *spatial)``: :func:`cnnmath.conv_macs`."""
    return _acc.conv_macs(in_shape, c_out, kernel_size, stride, padding, dilation)


def depthwise_separable_macs(in_shape, c_out, kernel_size, stride=1, padding=0, dilation=1, depth_multiplier=1):
    """MACs of a depthwise-separable convolution on an input ``(C_in, *spatial)``.

    ``|out| C_in M k^D`` (depthwise) ``+ |out| C_in M C_out`` (pointwise), with ``|out|``
    the number of output positions.
    """
    m = _multiplier(depth_multiplier)
    c_in = in_shape[0]
    mid = _acc.conv_output_shape(in_shape, c_in * m, kernel_size, stride, padding, dilation)
    return (_acc.conv_macs(in_shape, c_in * m, kernel_size, stride, padding, dilation, groups=c_in)
            + _acc.conv_macs(mid, c_out, 1))


def separable_cost_ratio(c_out, kernel_size, ndim=None):
    """Cost of depthwise-separable over standard convolution: ``1 / C_out + 1 / k^D``.

    Exact (a :class:`fractions.Fraction`) for the MACs and for the weights without
    biases, with depth multiplier 1 and any ``C_in`` (it cancels).

    >>> separable_cost_ratio(64, 3)
    Fraction(73, 576)
    """
    nd = _ndim_of(kernel_size, ndim)
    k = int_tuple(kernel_size, nd, "kernel_size")
    return Fraction(1, _acc._positive(c_out, "c_out")) + Fraction(1, prod(k))


# ---------------------------------------------------------------------------------------------
# (2+1)D factorization
# ---------------------------------------------------------------------------------------------

def _split3(x_shape, ws_shape, wt_shape, stride, padding, dilation):
    """Per-stage stride/padding/dilation of the spatial (1,k,k) and temporal (t,1,1) convolutions."""
    kt, kh, kw = wt_shape[2], ws_shape[3], ws_shape[4]
    _, s, d, pads = window_params(3, (kt, kh, kw), stride, padding, dilation)
    spatial = dict(stride=(1, s[1], s[2]), padding=((0, 0), pads[1], pads[2]), dilation=(1, d[1], d[2]))
    temporal = dict(stride=(s[0], 1, 1), padding=(pads[0], (0, 0), (0, 0)), dilation=(d[0], 1, 1))
    return spatial, temporal


def _check_2plus1(x, w_spatial, w_temporal):
    x = as_float_array(x, "x")
    check_rank(x, "x", ndim=5, layout="(N, C_in, T, H, W)")
    ws = as_float_array(w_spatial, "w_spatial")
    wt = as_float_array(w_temporal, "w_temporal")
    check_rank(ws, "w_spatial", ndim=5, layout="(M, C_in, 1, k_h, k_w)")
    check_rank(wt, "w_temporal", ndim=5, layout="(C_out, M, t, 1, 1)")
    if ws.shape[2] != 1:
        raise ValueError(f"w_spatial must have shape (M, C_in, 1, k_h, k_w) (temporal size 1), got {ws.shape}")
    if wt.shape[3:] != (1, 1):
        raise ValueError(f"w_temporal must have shape (C_out, M, t, 1, 1) (spatial size 1x1), got {wt.shape}")
    if ws.shape[1] != x.shape[1]:
        raise ValueError(f"w_spatial expects {ws.shape[1]} input channels but x has C_in={x.shape[1]} channels")
    if wt.shape[1] != ws.shape[0]:
        raise ValueError(f"w_temporal expects {wt.shape[1]} intermediate channels but w_spatial produces "
                         f"M={ws.shape[0]} channels")
    return x, ws, wt


def conv2plus1d(x, w_spatial, w_temporal, b_spatial=None, b_temporal=None, stride=1, padding=0, dilation=1,
                relu=False):
    """(2+1)D convolution: spatial ``(1, k_h, k_w)`` conv to ``M`` channels, then temporal ``(t, 1, 1)``.

    Parameters
    ----------
    x : array_like, shape (N, C_in, T, H, W)
    w_spatial : array_like, shape (M, C_in, 1, k_h, k_w)
    w_temporal : array_like, shape (C_out, M, t, 1, 1)
    b_spatial : array_like, shape (M,), optional
    b_temporal : array_like, shape (C_out,), optional
    stride, dilation : int or tuple (s_T, s_H, s_W)
        Those of the 3D convolution being replaced: the spatial entries go to the
        spatial stage, the temporal entry to the temporal stage.
    padding : int, tuple, (before, after) pairs, "valid", "same" or "full"
        Resolved against the full ``(t, k_h, k_w)`` kernel, then split the same way,
        so the output shape is that of the 3D convolution.
    relu : bool
        Apply ReLU to the intermediate (R(2+1)D). Default ``False``: the block is
        then exactly the 3D convolution with :func:`conv2plus1d_equivalent_kernel`.

    Returns
    -------
    ndarray, shape (N, C_out, T', H', W')
        The output shape of a 3D convolution with kernel ``(t, k_h, k_w)``.
    """
    conv, _ = _conv_ops()
    x, ws, wt = _check_2plus1(x, w_spatial, w_temporal)
    sp, tp = _split3(x.shape, ws.shape, wt.shape, stride, padding, dilation)
    h = conv(x, ws, b_spatial, **sp)
    if relu:
        h = np.maximum(h, 0)
    return conv(h, wt, b_temporal, **tp)


def conv2plus1d_backward(dout, x, w_spatial, w_temporal, b_spatial=None, stride=1, padding=0, dilation=1,
                         relu=False):
    """Gradients of :func:`conv2plus1d` (the intermediate is recomputed).

    Returns
    -------
    dx : ndarray, shape (N, C_in, T, H, W)
    dw_spatial : ndarray, shape (M, C_in, 1, k_h, k_w)
    dw_temporal : ndarray, shape (C_out, M, t, 1, 1)
    db_spatial : ndarray, shape (M,)
    db_temporal : ndarray, shape (C_out,)
    """
    conv, conv_backward = _conv_ops()
    x, ws, wt = _check_2plus1(x, w_spatial, w_temporal)
    sp, tp = _split3(x.shape, ws.shape, wt.shape, stride, padding, dilation)
    pre = conv(x, ws, b_spatial, **sp)
    h = np.maximum(pre, 0) if relu else pre
    dh, dwt, dbt = conv_backward(dout, h, wt, **tp)
    if relu:
        dh = np.where(pre > 0, dh, 0)
    dx, dws, dbs = conv_backward(dh, x, ws, **sp)
    return dx, dws, dwt, dbs, dbt


def conv2plus1d_equivalent_kernel(w_spatial, w_temporal):
    """The 3D kernel that :func:`conv2plus1d` (``relu=False``, no biases) applies.

    ``W[o, c, tau, i, j] = sum_m w_temporal[o, m, tau, 0, 0] w_spatial[m, c, 0, i, j]``: a sum of
    ``M`` separable (time x space) terms, so a rank-``M`` kernel. Biases fold in only
    without temporal padding (padded frames carry no spatial bias).

    Returns
    -------
    ndarray, shape (C_out, C_in, t, k_h, k_w)
    """
    ws = as_float_array(w_spatial, "w_spatial")
    wt = as_float_array(w_temporal, "w_temporal")
    check_rank(ws, "w_spatial", ndim=5, layout="(M, C_in, 1, k_h, k_w)")
    check_rank(wt, "w_temporal", ndim=5, layout="(C_out, M, t, 1, 1)")
    if ws.shape[2] != 1 or wt.shape[3:] != (1, 1) or wt.shape[1] != ws.shape[0]:
        raise ValueError(f"w_spatial (M, C_in, 1, k_h, k_w) and w_temporal (C_out, M, t, 1, 1) do not fit: "
                         f"got {ws.shape} and {wt.shape}")
    return np.einsum("omt,mcij->octij", wt[:, :, :, 0, 0], ws[:, :, 0])


def _kk(k):
    kh, kw = int_tuple(k, 2, "k")
    return kh, kw


def conv3d_params(c_in, c_out, t, k, bias=True):
    """Parameters of a 3D convolution with kernel ``(t, k, k)``: ``t k^2 C_in C_out (+ C_out)``.

    ``k`` may be an int or a pair ``(k_h, k_w)``.
    """
    return _acc.conv_params(c_in, c_out, (int(t),) + _kk(k), bias=bias)


def conv2plus1d_params(c_in, c_out, t, k, m, bias=True):
    """Parameters of the (2+1)D block: ``M C_in k^2 (+ M) + C_out M t (+ C_out)``."""
    kh, kw = _kk(k)
    return (_acc.conv_params(c_in, m, (1, kh, kw), bias=bias)
            + _acc.conv_params(m, c_out, (int(t), 1, 1), bias=bias))


def conv3d_macs(in_shape, c_out, t, k, stride=1, padding=0, dilation=1):
    """MACs of a 3D convolution with kernel ``(t, k, k)`` on ``in_shape = (C_in, T, H, W)``.

    ``T' H' W' t k^2 C_in C_out``; seed 000's cost ``~ T H W k^3 C_in C_out`` at stride 1, "same".
    """
    return _acc.conv_macs(in_shape, c_out, (int(t),) + _kk(k), stride, padding, dilation)


def conv2plus1d_macs(in_shape, c_out, t, k, m, stride=1, padding=0, dilation=1):
    """MACs of the (2+1)D block on ``in_shape = (C_in, T, H, W)``.

    ``T H' W' M C_in k^2`` (spatial stage, at full temporal length) ``+ T' H' W' C_out M t``.
    """
    kh, kw = _kk(k)
    in_shape = tuple(in_shape)
    if len(in_shape) != 4:
        raise ValueError(f"in_shape must be (C_in, T, H, W), got {in_shape!r}")
    sp, tp = _split3((1,) + in_shape, (m, in_shape[0], 1, kh, kw), (c_out, m, int(t), 1, 1), stride, padding,
                     dilation)
    mid = _acc.conv_output_shape(in_shape, m, (1, kh, kw), **sp)
    return (_acc.conv_macs(in_shape, m, (1, kh, kw), **sp)
            + _acc.conv_macs(mid, c_out, (int(t), 1, 1), **tp))


def conv2plus1d_matching_channels(c_in, c_out, t, k):
    """Intermediate channels ``M`` giving the (2+1)D block the weights of the 3D convolution.

    ``M = floor(t k^2 C_in C_out / (k^2 C_in + t C_out))`` (R(2+1)D, Tran et al. 2018):
    the largest ``M`` with ``M (k^2 C_in + t C_out) <= t k^2 C_in C_out`` (biases ignored).

    >>> conv2plus1d_matching_channels(64, 64, 3, 3)
    144
    """
    for name, v in (("c_in", c_in), ("c_out", c_out), ("t", t)):
        _acc._positive(v, name)
    kh, kw = _kk(k)
    return (t * kh * kw * c_in * c_out) // (kh * kw * c_in + t * c_out)
