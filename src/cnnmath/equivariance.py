"""Where shift equivariance breaks, and the Gaussian-process kernel of random convolutions.

Seed 001, section 7 ("translation sensitivity")
-----------------------------------------------
A stride-1 convolution with circular (periodic) boundaries commutes with every circular shift.
Downsampling does not: a layer of stride ``s`` commutes only with shifts by multiples of ``s``,
and max pooling's output under a one-pixel shift is in general no shift of the unshifted output
(aliasing). "Blur before pool" (Zhang, 2019, *Making convolutional networks shift-invariant
again*) takes the max densely (stride 1), low-pass filters it with a binomial kernel and only then
subsamples: :func:`blur_pool`. :func:`equivariance_defect` measures how far an output is from
*some* circular shift of another.

Everything here is periodic: a window that runs past the end wraps around, index ``(o s + j) mod n``,
so that borders play no role and only the downsampling breaks equivariance.

Seed 001, section 6 ("CNN as prior")
------------------------------------
The seed writes the Gaussian-process kernel of a network with random parameters ``theta`` as
``k(x, x') = integral K_theta(x) K_theta(x') dtheta``; the integral is against the prior
density ``p(theta)`` (errata, chapter 15), i.e. an expectation. For one convolutional feature map
``f(x)_o = b + sum_{c, j} w[c, j] xp[c, o + j]`` with independent ``w[c, j] ~ N(0, sigma_w2)`` and
``b ~ N(0, sigma_b2)`` the cross terms average to zero and

    k(x, x')_{o, o'} = E[f(x)_o f(x')_{o'}] = sigma_b2 + sigma_w2 sum_{c, j} xp[c, o + j] xp'[c, o' + j]:

the prior compares only the two windows (:func:`conv_gp_kernel`). :func:`monte_carlo_gp_kernel`
is the same expectation estimated from sampled kernels.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._args import as_float_array, check_rank, int_tuple, result_dtype
from .conv import conv
from .im2col import im2col
from .pooling import max_pool
from .sizes import output_size

__all__ = ["circular_max_pool", "blur_pool", "equivariance_defect", "conv_gp_kernel", "monte_carlo_gp_kernel"]


def _periodic(x, stride, name="x"):
    x = as_float_array(x, name)
    check_rank(x, name, min_ndim=3, layout="(N, C, *spatial)")
    s = int_tuple(stride, x.ndim - 2, "stride")
    for size, step in zip(x.shape[2:], s):
        if size % step:
            raise ValueError(f"every spatial size of {name} must be a multiple of stride {stride!r} "
                             f"(periodic signals), got {name} of shape {x.shape}")
    return x, s


def _wrap(x, before, after):
    return np.pad(x, [(0, 0), (0, 0)] + [(b, a) for b, a in zip(before, after)], mode="wrap")


def circular_max_pool(x, kernel_size, stride=1):
    """Max pooling of a periodic signal: ``y[n, c, o] = max_j x[n, c, (o s + j) mod size]``.

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
        Channels-first input with ``D >= 1`` spatial dimensions, each a multiple of ``stride``.
    kernel_size, stride : int or tuple of D ints
        Window size ``k`` (at most the spatial size) and step ``s``.

    Returns
    -------
    y : ndarray, shape (N, C, *(spatial / s))
        Same float dtype as ``x``. With ``s = 1`` it commutes with every circular shift.
    """
    x, s = _periodic(x, stride)
    k = int_tuple(kernel_size, x.ndim - 2, "kernel_size")
    if any(kk > n for kk, n in zip(k, x.shape[2:])):
        raise ValueError(f"kernel_size must be at most the spatial size {x.shape[2:]}, got {kernel_size!r}")
    return max_pool(_wrap(x, [0] * len(k), [kk - 1 for kk in k]), k, stride=s)


def blur_pool(x, stride=2):
    """Anti-aliased max pooling (Zhang's MaxBlurPool): dense max, binomial blur, then subsample.

    ``m = circular_max_pool(x, 2, 1)``, then every channel is filtered by the binomial kernel
    ``B = b x b x ...`` with ``b = [1, 2, 1] / 4`` centred on the sampled positions, circularly:
    ``y[n, c, o] = sum_j B[j] m[n, c, (o s + j - 1) mod size]``.

    Parameters
    ----------
    x : array_like, shape (N, C, *spatial)
        Channels-first input, each spatial size a multiple of ``stride``.
    stride : int or tuple of D ints, default 2

    Returns
    -------
    y : ndarray, shape (N, C, *(spatial / s))
        Same float dtype as ``x``.
    """
    x, s = _periodic(x, stride)
    dims = x.ndim - 2
    dense = circular_max_pool(x, 2, 1)
    b = np.array([1.0, 2.0, 1.0]) / 4
    kernel = b
    for _ in range(dims - 1):
        kernel = np.multiply.outer(kernel, b)
    c = x.shape[1]
    w = np.broadcast_to(kernel.astype(x.dtype), (c, 1) + kernel.shape).copy()
    return conv(_wrap(dense, [1] * dims, [1] * dims), w, stride=s, groups=c)


def equivariance_defect(y, y_shifted):
    """How far ``y_shifted`` is from every circular shift of ``y``: ``min_r max |y_shifted - roll(y, r)|``.

    Parameters
    ----------
    y, y_shifted : array_like, same shape (N, C, *spatial)
        A layer's output on an input and on a circularly shifted copy of it.

    Returns
    -------
    defect : float
        The minimum over every circular shift ``r`` of the spatial axes (all axes from 2 on) of
        the largest absolute difference; 0 exactly when the layer's output moved as a whole.
    """
    y, ys = as_float_array(y, "y"), as_float_array(y_shifted, "y_shifted")
    check_rank(y, "y", min_ndim=3, layout="(N, C, *spatial)")
    if ys.shape != y.shape:
        raise ValueError(f"y_shifted must have the shape of y {y.shape}, got {ys.shape}")
    axes = tuple(range(2, y.ndim))
    best = np.inf
    for r in itertools.product(*(range(n) for n in y.shape[2:])):
        best = min(best, float(np.max(np.abs(ys - np.roll(y, r, axis=axes)), initial=0.0)))
    return best


def _one_input(x, name):
    x = as_float_array(x, name)
    check_rank(x, name, min_ndim=2, layout="(C, *spatial)")
    return x


def conv_gp_kernel(x, x_prime, kernel_size, sigma_w2=1.0, sigma_b2=0.0, padding=0):
    """The prior covariance of one random convolutional feature map on two inputs.

    ``k[o, o'] = E[f(x)_o f(x')_o'] = sigma_b2 + sigma_w2 sum_{c, j} xp[c, o + j] xp'[c, o' + j]``
    for ``f(x) = conv(x, w) + b`` (stride 1, zero ``padding``) with independent
    ``w ~ N(0, sigma_w2)`` entries and ``b ~ N(0, sigma_b2)``.

    Parameters
    ----------
    x, x_prime : array_like, shapes (C, *spatial) and (C, *spatial')
        Two inputs with the same channels and ``D >= 1`` spatial dimensions.
    kernel_size : int or tuple of D ints
    sigma_w2, sigma_b2 : float
        Prior variances of every weight and of the bias (non-negative).
    padding : int or tuple of D ints, default 0
        Zero padding on both sides, as in :func:`cnnmath.conv`.

    Returns
    -------
    k : ndarray, shape (*out, *out')
        ``out`` and ``out'`` the output sizes of the two feature maps; float64 unless both inputs
        are float32.
    """
    x, xq = _one_input(x, "x"), _one_input(x_prime, "x_prime")
    if xq.ndim != x.ndim or xq.shape[0] != x.shape[0]:
        raise ValueError(f"x_prime must have the channels and rank of x {x.shape}, got shape {xq.shape}")
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool) or not v >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    dtype = result_dtype(x, xq)
    cols = im2col(x[None].astype(dtype), kernel_size, padding=padding)[0]
    cols_q = im2col(xq[None].astype(dtype), kernel_size, padding=padding)[0]
    out = tuple(output_size(tuple(x.shape[1:]), kernel_size, padding=padding))
    out_q = tuple(output_size(tuple(xq.shape[1:]), kernel_size, padding=padding))
    k = dtype.type(sigma_b2) + dtype.type(sigma_w2) * (cols.T @ cols_q)
    return k.reshape(out + out_q).astype(dtype)


def monte_carlo_gp_kernel(x, x_prime, weights, biases=None, padding=0):
    """The same expectation estimated from sampled kernels: the average of ``f(x)_o f(x')_o'``.

    Parameters
    ----------
    x, x_prime : array_like, shapes (C, *spatial) and (C, *spatial')
    weights : array_like, shape (S, C, *kernel)
        ``S`` sampled kernels (each one feature map).
    biases : array_like, shape (S,), optional
        Their sampled biases (default: none).
    padding : int or tuple of D ints, default 0

    Returns
    -------
    k : ndarray, shape (*out, *out')
        ``mean_s f_s(x)_o f_s(x')_o'`` with ``f_s(x) = conv(x, weights[s]) + biases[s]``.
    """
    x, xq = _one_input(x, "x"), _one_input(x_prime, "x_prime")
    w = as_float_array(weights, "weights")
    check_rank(w, "weights", ndim=x.ndim + 1, layout="(S, C, *kernel)")
    f = conv(x[None], w, biases, padding=padding)[0]
    fq = conv(xq[None], w, biases, padding=padding)[0]
    s = f.shape[0]
    return (f.reshape(s, -1).T @ fq.reshape(s, -1) / s).reshape(f.shape[1:] + fq.shape[1:])
