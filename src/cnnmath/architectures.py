"""ShuffleNet's channel shuffle, EfficientNet's compound scaling and the comparisons of max pooling.

Seed 001 (section 8) lists three efficient architectures by their one idea each: MobileNet's
depthwise separable convolution (:mod:`cnnmath.efficient`), EfficientNet's compound scaling and
ShuffleNet's channel shuffle (chapter 14). The shuffle is a fixed permutation of the channels:
view ``C = g * m`` channels as a ``(g, m)`` grid (group, channel within the group), transpose it
to ``(m, g)`` and read it out again, so output channel ``i * g + j`` is input channel ``j * m + i``
and each group of the next grouped convolution receives one channel of every previous group.
Its backward pass is the inverse permutation, which is the shuffle with ``m`` groups.

Compound scaling multiplies the depth (number of layers) by ``d``, the width (channels) by ``w``
and the input resolution by ``r``; the multiply-adds ``H W C_in C_out k^2`` of every layer then
grow by ``w^2 r^2`` and their number by ``d``, so the network's cost by ``d w^2 r^2`` (EfficientNet
picks ``d = alpha^phi``, ``w = beta^phi``, ``r = gamma^phi`` with ``alpha beta^2 gamma^2 ~ 2``).

:func:`max_pool_comparisons` counts the pairwise comparisons a max pool makes (``k^D - 1`` per
output element), the last number of seed 003's first block (chapter 13).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._args import as_float_array, check_rank, is_int
from .accounting import pool_output_shape

__all__ = ["channel_shuffle", "channel_shuffle_backward", "compound_scaling_factor", "max_pool_comparisons"]


def _groups(groups, channels):
    if not is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if channels % groups:
        raise ValueError(f"groups must divide the number of channels {channels}, got {groups}")
    return int(groups)


def _order(g, c):
    """The source channel of every output channel: row-major (g, c / g) grid read column by column."""
    return np.arange(c).reshape(g, c // g).T.ravel()


def channel_shuffle(x, groups):
    """ShuffleNet's channel shuffle: output channel ``i * g + j`` is input channel ``j * (C / g) + i``.

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
        Channels-first; ``C`` a multiple of ``groups``.
    groups : int
        ``g``, the number of groups of the grouped convolution before the shuffle.

    Returns
    -------
    ndarray, shape (N, C, *spatial)
        The same values with the channels permuted (float32 stays float32), as
        ``torch.nn.functional.channel_shuffle(x, groups)``.

    Examples
    --------
    >>> channel_shuffle(np.arange(6.0).reshape(1, 6, 1, 1), 2)[0, :, 0, 0]
    array([0., 3., 1., 4., 2., 5.])
    """
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=2, layout="(N, C, *spatial)")
    c = x.shape[1]
    return x[:, _order(_groups(groups, c), c)]        # fancy indexing: a new array


def channel_shuffle_backward(dout, groups):
    """Gradient of :func:`channel_shuffle` with respect to ``x``: the inverse permutation.

    Parameters
    ----------
    dout : array_like, shape (N, C, *spatial)
        ``dL/dy`` for ``y = channel_shuffle(x, groups)``.
    groups : int
        The ``groups`` of the forward pass.

    Returns
    -------
    ndarray, shape (N, C, *spatial)
        ``dL/dx``: input channel ``j * (C / g) + i`` receives output channel ``i * g + j``,
        which is ``channel_shuffle(dout, C // groups)``.
    """
    dout = as_float_array(dout, "dout")
    check_rank(dout, "dout", min_ndim=2, layout="(N, C, *spatial)")
    dx = np.empty_like(dout)
    dx[:, _order(_groups(groups, dout.shape[1]), dout.shape[1])] = dout   # y[:, p] = x  =>  dx[:, p] = dy
    return dx


def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def compound_scaling_factor(depth, width, resolution, phi=1):
    """Factor by which compound scaling multiplies a network's multiply-adds: ``(d w^2 r^2)^phi``.

    Parameters
    ----------
    depth, width, resolution : float
        ``d``, ``w``, ``r`` > 0: the multipliers of the number of layers, of every layer's channels
        (``C_in`` and ``C_out`` both) and of the input's height and width.
    phi : float, default 1
        The compound coefficient: EfficientNet scales by ``d^phi``, ``w^phi``, ``r^phi``.

    Returns
    -------
    float

    Examples
    --------
    >>> round(compound_scaling_factor(1.2, 1.1, 1.15), 4)   # EfficientNet's alpha, beta, gamma
    1.9203
    """
    d, w, r = _factor(depth, "depth"), _factor(width, "width"), _factor(resolution, "resolution")
    if isinstance(phi, bool) or not isinstance(phi, numbers.Real) or not math.isfinite(phi):
        raise ValueError(f"phi must be a finite number, got {phi!r}")
    return float((d * w * w * r * r) ** phi)


def max_pool_comparisons(in_shape, kernel_size, stride=None, padding=0, dilation=1):
    """Pairwise comparisons of a max pool on one input: ``(k_1 ... k_D - 1)`` per output element.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C, n_1, ..., n_D)``, no batch dimension.
    kernel_size, stride, padding, dilation
        As for :func:`cnnmath.max_pool` (``stride`` defaults to ``kernel_size``).

    Returns
    -------
    int
        The maximum of ``m`` numbers takes ``m - 1`` comparisons, so
        ``C o_1 ... o_D (k_1 ... k_D - 1)``.

    Examples
    --------
    >>> max_pool_comparisons((8, 16, 16), 2)   # seed 003, Pool1: 512 outputs x 3
    1536
    """
    out = pool_output_shape(in_shape, kernel_size, stride, padding, dilation)
    ks = (kernel_size,) * (len(out) - 1) if is_int(kernel_size) else tuple(kernel_size)
    return int(np.prod(out)) * (int(np.prod(ks)) - 1)
