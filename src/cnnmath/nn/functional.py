"""Activations, the dense layer and flatten, each with its ``*_backward`` (seed 003 section I).

Formulas::

    ReLU       f(z) = max(0, z)                 f'(z) = 1[z > 0]   (0 at z = 0, as PyTorch)
    sigmoid    s(z) = 1 / (1 + e^{-z})          s'(z) = s(z) (1 - s(z))
    softmax    y_i  = e^{z_i} / sum_j e^{z_j}   dz_i  = y_i (dy_i - sum_j dy_j y_j)
    dense      yhat = w^T p + b  (seed);  here y = x W^T + b with W of shape (N_out, N_in)

Every ``*_backward`` takes the upstream gradient ``dout`` and returns the input gradient.
"""

from __future__ import annotations

from math import prod

import numpy as np

from .._args import as_float_array, check_rank, result_dtype
from ._checks import axis_index, upstream

__all__ = ["relu", "relu_backward", "sigmoid", "sigmoid_backward", "softmax", "softmax_backward", "log_softmax",
           "dense", "dense_backward", "flatten", "flatten_backward"]


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------

def relu(x):
    """Rectified linear unit ``max(0, x)``, element-wise (seed 003 section I.2).

    Parameters
    ----------
    x : array_like, any shape

    Returns
    -------
    ndarray, same shape and floating dtype as ``x``.
    """
    x = as_float_array(x, "x")
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_backward(dout, x):
    """Gradient of :func:`relu`: ``dx = dout * 1[x > 0]`` (0 at ``x = 0``, as PyTorch).

    Parameters
    ----------
    dout : array_like, shape of ``x``
        Upstream gradient ``dL/dy``.
    x : array_like
        The forward input.
    """
    x = as_float_array(x, "x")
    dout = upstream(dout, x)
    return np.where(x > 0, dout, 0).astype(dout.dtype, copy=False)


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` (seed 003 section I.2), overflow-free.

    Evaluated as ``1 / (1 + e^{-x})`` for ``x >= 0`` and ``e^{x} / (1 + e^{x})``
    for ``x < 0`` so that no exponent is ever positive.
    """
    x = as_float_array(x, "x")
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(dout, x):
    """Gradient of :func:`sigmoid`: ``dx = dout * s (1 - s)`` with ``s = sigmoid(x)``."""
    x = as_float_array(x, "x")
    dout = upstream(dout, x)
    s = sigmoid(x)
    return dout * s * (1 - s)


def softmax(x, axis=-1):
    """Softmax along ``axis`` (seed 003 section I.2): ``e^{x_i} / sum_j e^{x_j}``.

    Numerically stable: the maximum along ``axis`` is subtracted first (softmax is
    invariant to adding a constant), so no exponent exceeds 0.

    Parameters
    ----------
    x : array_like, at least 1-D
    axis : int
        The class axis (default the last one).
    """
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=1)
    axis = axis_index(axis, x.ndim)
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """``log softmax(x)`` computed stably as ``z - log sum exp z`` with ``z = x - max x``."""
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=1)
    axis = axis_index(axis, x.ndim)
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax_backward(dout, x, axis=-1):
    """Gradient of :func:`softmax` along ``axis``.

    With ``y = softmax(x)`` the Jacobian is ``diag(y) - y y^T``, so
    ``dx_i = y_i (dout_i - sum_j dout_j y_j)``.
    """
    x = as_float_array(x, "x")
    dout = upstream(dout, x)
    y = softmax(x, axis)
    axis = axis_index(axis, x.ndim)
    return y * (dout - np.sum(dout * y, axis=axis, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Dense layer and flatten
# ---------------------------------------------------------------------------------------------

def _dense_args(x, w, b):
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    check_rank(x, "x", min_ndim=1, layout="(..., N_in)")
    check_rank(w, "w", ndim=2, layout="(N_out, N_in)")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[-1]} features (last axis) but w of shape {w.shape} expects "
                         f"N_in={w.shape[1]} input features")
    if b is not None:
        b = as_float_array(b, "b")
        if b.shape != (w.shape[0],):
            raise ValueError(f"b must have shape (N_out,) = ({w.shape[0]},), got {b.shape}")
    return x, w, b


def dense(x, w, b=None):
    """Fully connected layer ``y = x W^T + b`` (``torch.nn.functional.linear``).

    Seed 003 writes one output as ``yhat = w^T p + b_fc``; here ``W`` holds one row
    of weights per output neuron, as ``torch.nn.Linear.weight`` does.

    Parameters
    ----------
    x : array_like, shape (..., N_in)
        Inputs, one vector per row (any leading batch dimensions).
    w : array_like, shape (N_out, N_in)
    b : array_like, shape (N_out,), optional

    Returns
    -------
    ndarray, shape (..., N_out)
    """
    x, w, b = _dense_args(x, w, b)
    dt = result_dtype(x, w, *(() if b is None else (b,)))
    y = np.matmul(x.astype(dt, copy=False), w.astype(dt, copy=False).T)
    if b is not None:
        y = y + b.astype(dt, copy=False)
    return y


def dense_backward(dout, x, w):
    """Gradients of :func:`dense`.

    ``dx = dout W``, ``dW = sum over samples of dout^T x``, ``db = sum over samples of dout``
    (seed 003: ``dL/dw_i = dL/dyhat p_i``, ``dL/db = dL/dyhat``).

    Parameters
    ----------
    dout : array_like, shape (..., N_out)
    x : array_like, shape (..., N_in)
    w : array_like, shape (N_out, N_in)

    Returns
    -------
    dx : ndarray, shape (..., N_in)
    dw : ndarray, shape (N_out, N_in)
    db : ndarray, shape (N_out,)
    """
    x, w, _ = _dense_args(x, w, None)
    dout = as_float_array(dout, "dout")
    expected = x.shape[:-1] + (w.shape[0],)
    if dout.shape != expected:
        raise ValueError(f"dout must have shape {expected} (x's batch shape + N_out), got {dout.shape}")
    dt = result_dtype(dout, x, w)
    d2 = dout.reshape(-1, w.shape[0]).astype(dt, copy=False)
    x2 = x.reshape(-1, w.shape[1]).astype(dt, copy=False)
    dx = (d2 @ w.astype(dt, copy=False)).reshape(x.shape)
    return dx, d2.T @ x2, d2.sum(axis=0)


def flatten(x):
    """Flatten every sample: ``(N, C, *spatial) -> (N, C * prod(spatial))`` in C order.

    Seed 003 flattens the 2x2 map ``[[4, 0], [4, 3]]`` row by row to ``p = [4, 0, 4, 3]``;
    channels-first C order is also what ``torch.flatten(x, 1)`` does.
    """
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=1, layout="(N, ...)")
    return x.reshape(x.shape[0], -1)


def flatten_backward(dout, x_shape):
    """Gradient of :func:`flatten`: reshape ``dout`` (N, D) back to ``x_shape``."""
    dout = as_float_array(dout, "dout")
    x_shape = tuple(x_shape)
    if dout.size != prod(x_shape):
        raise ValueError(f"dout of shape {dout.shape} cannot be reshaped to x_shape {x_shape}")
    return dout.reshape(x_shape)
