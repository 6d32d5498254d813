"""Activations, losses, a dense layer and a minimal sequential network, each with its gradient.

Enough machinery to run seed 003's worked example end to end (4x4 input, 3x3
kernel, ReLU, flatten, one output neuron, MSE, one SGD step) and to train small
networks in the book. Every forward function has a ``*_backward`` twin that
takes the upstream gradient ``dout`` and returns the gradient of the input
(CS231n's layers.py style).

Formulas (seed 003 section I)::

    ReLU       f(z) = max(0, z)                 f'(z) = 1[z > 0]   (0 at z = 0, as PyTorch)
    sigmoid    s(z) = 1 / (1 + e^{-z})          s'(z) = s(z) (1 - s(z))
    softmax    y_i  = e^{z_i} / sum_j e^{z_j}   dz_i  = y_i (dy_i - sum_j dy_j y_j)
    MSE        L    = 1/2 sum_i (yhat_i - t_i)^2      dL/dyhat_i = yhat_i - t_i
    CE         L    = - sum_i t_i log yhat_i          dL/dyhat_i = - t_i / yhat_i
    dense      yhat = w^T p + b  (seed);  here y = x W^T + b with W of shape (N_out, N_in)

Loss conventions (read before comparing with PyTorch)
-----------------------------------------------------
The seed's MSE is ``1/2 sum (yhat - t)^2`` so that its gradient is ``yhat - t``.
``torch.nn.MSELoss()`` is the *mean* without the 1/2 (``reduction="mean"``).
:func:`mse_loss` therefore takes ``reduction`` in ``{"half_sum", "sum", "mean"}``;
the default ``"half_sum"`` is the seed's. The seed's cross-entropy is a *sum*
over classes (and samples); ``torch.nn.CrossEntropyLoss()`` takes logits and
averages over the batch (``reduction="mean"`` here).

Layers and the network
----------------------
:class:`Conv`, :class:`ReLU`, :class:`Sigmoid`, :class:`Softmax`,
:class:`MaxPool`, :class:`AvgPool`, :class:`Flatten` and :class:`Dense` are
layer objects with ``forward(x)`` (caches what ``backward`` needs),
``backward(dout)`` (stores parameter gradients, returns the input gradient),
and the accounting methods ``output_shape``, ``param_count``, ``macs`` used by
:func:`cnnmath.summarize`: the same object both runs and counts itself.
:class:`Sequential` chains them; :func:`sgd_step` applies ``w <- w - lr dw`` to
every trainable parameter. A layer built with ``trainable=False`` still
computes its parameter gradients (so they can be inspected) but is not updated:
this is how seed 003's example keeps its kernel ``K`` fixed.
"""

from __future__ import annotations

from math import prod

import numpy as np

from . import accounting as _acc
from ._args import is_int, as_float_array, check_rank, int_tuple, result_dtype

__all__ = [
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "log_softmax",
    "mse_loss",
    "mse_loss_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_from_logits",
    "cross_entropy_from_logits_backward",
    "dense",
    "dense_backward",
    "flatten",
    "flatten_backward",
    "Layer",
    "Conv",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "MaxPool",
    "AvgPool",
    "Flatten",
    "Dense",
    "Sequential",
    "sgd_step",
]


def _same_shape(dout, x, what="dout", of="x"):
    dout = as_float_array(dout, what)
    if dout.shape != x.shape:
        raise ValueError(f"{what} must have the shape of {of} {x.shape}, got {dout.shape}")
    return dout


def _upstream(dout, x, name="dout"):
    d = _same_shape(dout, x, name)
    return d.astype(result_dtype(d, x), copy=False)


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
    dout = _upstream(dout, x)
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
    dout = _upstream(dout, x)
    s = sigmoid(x)
    return dout * s * (1 - s)


def _axis(axis, ndim):
    if not is_int(axis) or not -ndim <= axis < ndim:
        raise ValueError(f"axis must be an int in [{-ndim}, {ndim}), got {axis!r}")
    return axis % ndim


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
    axis = _axis(axis, x.ndim)
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """``log softmax(x)`` computed stably as ``z - log sum exp z`` with ``z = x - max x``."""
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=1)
    axis = _axis(axis, x.ndim)
    z = x - np.max(x, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax_backward(dout, x, axis=-1):
    """Gradient of :func:`softmax` along ``axis``.

    With ``y = softmax(x)`` the Jacobian is ``diag(y) - y y^T``, so
    ``dx_i = y_i (dout_i - sum_j dout_j y_j)``.
    """
    x = as_float_array(x, "x")
    dout = _upstream(dout, x)
    y = softmax(x, axis)
    axis = _axis(axis, x.ndim)
    return y * (dout - np.sum(dout * y, axis=axis, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------

_MSE_REDUCTIONS = ("half_sum", "sum", "mean")


def _pair(yhat, t, yname="yhat"):
    yhat = as_float_array(yhat, yname)
    t = as_float_array(t, "t")
    if t.shape != yhat.shape:
        try:
            t = np.broadcast_to(t, yhat.shape)
        except ValueError:
            raise ValueError(f"t must have the shape of {yname} {yhat.shape} (or broadcast to it), "
                             f"got {t.shape}") from None
    return yhat, t


def _check_reduction(reduction, allowed):
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}")


def mse_loss(yhat, t, reduction="half_sum"):
    """Squared-error loss between prediction ``yhat`` and target ``t``.

    Parameters
    ----------
    yhat : array_like, any shape
    t : array_like, broadcastable to ``yhat``
    reduction : {"half_sum", "sum", "mean"}
        ``"half_sum"`` (default): ``L = 1/2 sum_i (yhat_i - t_i)^2``, seed 003's
        convention, whose gradient is ``yhat - t``.
        ``"sum"``: ``sum_i (yhat_i - t_i)^2``.
        ``"mean"``: ``mean_i (yhat_i - t_i)^2``, what ``torch.nn.MSELoss()`` computes
        (no 1/2; the mean is over *all* elements, batch and outputs).

    Returns
    -------
    float

    Examples
    --------
    Seed 003: ``yhat = 2.9``, ``t = 0`` gives ``L = 4.205``.

    >>> round(mse_loss([2.9], [0.0]), 12)
    4.205
    """
    _check_reduction(reduction, _MSE_REDUCTIONS)
    yhat, t = _pair(yhat, t)
    sq = np.sum((yhat - t) ** 2)
    if reduction == "half_sum":
        return float(0.5 * sq)
    if reduction == "sum":
        return float(sq)
    return float(sq / max(yhat.size, 1))


def mse_loss_backward(yhat, t, reduction="half_sum", dout=1.0):
    """Gradient ``dL/dyhat`` of :func:`mse_loss`, times the scalar upstream gradient ``dout``.

    ``half_sum``: ``yhat - t`` (seed 003: ``2.9 - 0 = 2.9``); ``sum``: ``2 (yhat - t)``;
    ``mean``: ``2 (yhat - t) / yhat.size``.

    Returns
    -------
    ndarray, shape of ``yhat``.
    """
    _check_reduction(reduction, _MSE_REDUCTIONS)
    yhat, t = _pair(yhat, t)
    scale = {"half_sum": 1.0, "sum": 2.0, "mean": 2.0 / max(yhat.size, 1)}[reduction]
    return ((yhat - t) * (scale * float(dout))).astype(yhat.dtype, copy=False)


def _targets(t, yhat, axis, yname):
    """Return dense targets shaped like ``yhat`` (class indices become one-hot)."""
    t_arr = np.asarray(t)
    if t_arr.shape == yhat.shape:
        return as_float_array(t_arr, "t")
    expected = yhat.shape[:axis] + yhat.shape[axis + 1:]
    if t_arr.shape == expected and t_arr.dtype.kind in "iu":
        c = yhat.shape[axis]
        if t_arr.size and (t_arr.min() < 0 or t_arr.max() >= c):
            raise ValueError(f"t holds class indices that must lie in [0, {c}), got min {t_arr.min()}, "
                             f"max {t_arr.max()}")
        onehot = np.moveaxis(np.eye(c, dtype=yhat.dtype)[t_arr], -1, axis)
        return onehot
    raise ValueError(f"t must be target probabilities of the shape of {yname} {yhat.shape} or integer "
                     f"class indices of shape {expected}, got shape {t_arr.shape} dtype {t_arr.dtype}")


def _n_samples(yhat, axis):
    return max(yhat.size // yhat.shape[axis], 1)


def cross_entropy(yhat, t, axis=-1, reduction="sum"):
    """Categorical cross-entropy from probabilities: ``L = - sum_i t_i log yhat_i`` (seed 003).

    Parameters
    ----------
    yhat : array_like, shape (..., C, ...)
        Predicted probabilities (e.g. the output of :func:`softmax`), class axis ``axis``.
    t : array_like
        Target probabilities / one-hot vectors of the shape of ``yhat``, or integer
        class indices with the class axis removed.
    axis : int
        The class axis.
    reduction : {"sum", "mean"}
        ``"sum"`` (seed): summed over classes and samples. ``"mean"``: divided by the
        number of samples (every position except the class axis), as
        ``torch.nn.CrossEntropyLoss`` / ``NLLLoss`` do.

    Returns
    -------
    float
        ``inf`` if a class with ``t_i > 0`` has ``yhat_i = 0`` (no clipping is done;
        use :func:`cross_entropy_from_logits` for a stable loss from scores).
    """
    _check_reduction(reduction, ("sum", "mean"))
    yhat = as_float_array(yhat, "yhat")
    check_rank(yhat, "yhat", min_ndim=1)
    axis = _axis(axis, yhat.ndim)
    t = _targets(t, yhat, axis, "yhat")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t != 0, -t * np.log(yhat), 0.0)
    total = float(np.sum(terms))
    return total / _n_samples(yhat, axis) if reduction == "mean" else total


def cross_entropy_backward(yhat, t, axis=-1, reduction="sum", dout=1.0):
    """Gradient of :func:`cross_entropy` w.r.t. the probabilities: ``- t_i / yhat_i`` (times ``dout``).

    Returns
    -------
    ndarray, shape of ``yhat``.
    """
    _check_reduction(reduction, ("sum", "mean"))
    yhat = as_float_array(yhat, "yhat")
    check_rank(yhat, "yhat", min_ndim=1)
    axis = _axis(axis, yhat.ndim)
    t = _targets(t, yhat, axis, "yhat").astype(result_dtype(yhat), copy=False)
    scale = float(dout) / (_n_samples(yhat, axis) if reduction == "mean" else 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(t != 0, -t / yhat, 0.0) * scale
    return grad.astype(yhat.dtype, copy=False)


def cross_entropy_from_logits(z, t, axis=-1, reduction="sum"):
    """Cross-entropy of ``softmax(z)`` against ``t``, computed stably from the scores ``z``.

    ``L = - sum_i t_i log softmax(z)_i = - sum_i t_i (z_i - logsumexp(z))``.
    With ``reduction="mean"`` and the defaults this equals
    ``torch.nn.CrossEntropyLoss()(z, t)`` for class-index or probability targets.

    Parameters
    ----------
    z : array_like, shape (..., C, ...)
        Scores (logits), class axis ``axis``.
    t, axis, reduction
        As for :func:`cross_entropy`.
    """
    _check_reduction(reduction, ("sum", "mean"))
    z = as_float_array(z, "z")
    check_rank(z, "z", min_ndim=1)
    axis = _axis(axis, z.ndim)
    t = _targets(t, z, axis, "z")
    total = float(-np.sum(t * log_softmax(z, axis)))
    return total / _n_samples(z, axis) if reduction == "mean" else total


def cross_entropy_from_logits_backward(z, t, axis=-1, reduction="sum", dout=1.0):
    """Gradient of :func:`cross_entropy_from_logits` w.r.t. ``z``.

    ``dL/dz_i = softmax(z)_i sum_j t_j - t_i``, i.e. the familiar ``softmax(z) - t``
    when each target sums to 1; divided by the number of samples for ``"mean"``.
    """
    _check_reduction(reduction, ("sum", "mean"))
    z = as_float_array(z, "z")
    check_rank(z, "z", min_ndim=1)
    axis = _axis(axis, z.ndim)
    t = _targets(t, z, axis, "z")
    grad = softmax(z, axis) * np.sum(t, axis=axis, keepdims=True) - t
    scale = float(dout) / (_n_samples(z, axis) if reduction == "mean" else 1)
    return (grad * scale).astype(z.dtype, copy=False)


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


# ---------------------------------------------------------------------------------------------
# Layer objects
# ---------------------------------------------------------------------------------------------

class Layer:
    """Base class: a stateless layer with no parameters.

    Subclasses implement ``forward``/``backward`` and may override the accounting
    methods. Shapes given to ``output_shape``/``param_count``/``macs`` are
    channels-first without the batch dimension.
    """

    trainable = False
    name = None

    def __init__(self):
        self._cache = None
        self.grads = {}

    # running -----------------------------------------------------------------------------
    def build(self, in_shape, rng):
        """Create parameters for an input of ``in_shape`` (no batch). Default: nothing."""

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout):  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self):
        """Learnable arrays by name (empty for parameter-free layers)."""
        return {}

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    # accounting --------------------------------------------------------------------------
    def output_shape(self, in_shape):
        return tuple(in_shape)

    def param_count(self, in_shape):
        return 0

    def macs(self, in_shape):
        return 0

    def hyperparameters(self):
        return ""

    def __repr__(self):
        hp = self.hyperparameters()
        return f"{type(self).__name__}({hp})"


def _param(value, name, shape=None):
    arr = np.array(as_float_array(value, name), copy=True)  # never alias the caller's array
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    return arr


def _fan_in_uniform(rng, shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


class _WeightedLayer(Layer):
    """A layer with a ``weight`` and an optional bias ``b`` (Conv, Dense)."""

    def _init_parameters(self, bias, trainable, name, b):
        """Set the flags Conv and Dense share; ``weight`` and ``b`` start unset (the caller or ``build`` fills them)."""
        self.bias = bool(bias)
        self.trainable = bool(trainable)
        self.name = name
        self.weight = None
        self.b = None
        if b is not None and not self.bias:
            raise ValueError("b was given but bias=False")

    def _store_grads(self, dw, db):
        self.grads = {"weight": dw}
        if self.bias:
            self.grads["bias"] = db

    def params(self):
        if self.weight is None:
            return {}
        out = {"weight": self.weight}
        if self.bias:
            out["bias"] = self.b
        return out


class Conv(_WeightedLayer):
    """Convolution layer wrapping :func:`cnnmath.conv` / :func:`cnnmath.conv_backward`.

    Parameters
    ----------
    out_channels : int
        ``C_out``.
    kernel_size : int or tuple of int
    stride, padding, dilation, groups
        As for :func:`cnnmath.conv`.
    bias : bool
        Whether the layer has a bias ``(C_out,)``.
    weight : array_like, shape (C_out, C_in / groups, *kernel), optional
        Initial kernel; copied. If omitted, drawn uniformly from
        ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` when the network is built.
    b : array_like, shape (C_out,), optional
        Initial bias (requires ``bias=True``); zeros if omitted and ``weight`` is given.
    trainable : bool
        ``False`` freezes the layer: gradients are still computed (``grads``) but
        :func:`sgd_step` leaves the parameters unchanged.

    Notes
    -----
    ``forward`` caches its input; ``backward`` returns ``dx`` and stores
    ``grads["weight"]`` (seed 004 eq. 9.11) and ``grads["bias"]``.
    """

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 *, weight=None, b=None, trainable=True, name=None):
        super().__init__()
        if not is_int(out_channels) or out_channels < 1:
            raise ValueError(f"out_channels must be a positive int, got {out_channels!r}")
        if not (is_int(kernel_size) or isinstance(kernel_size, (tuple, list))):
            raise TypeError(f"kernel_size must be an int or a tuple of ints, got {kernel_size!r}")
        self.out_channels = int(out_channels)
        self.kernel_size = kernel_size
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self._init_parameters(bias, trainable, name, b)
        if weight is not None:
            w = _param(weight, "weight")
            if w.ndim < 3 or w.shape[0] != self.out_channels:
                raise ValueError(f"weight must have shape (C_out={self.out_channels}, C_in/groups, *kernel), "
                                 f"got {w.shape}")
            k = int_tuple(kernel_size, w.ndim - 2, "kernel_size")
            if w.shape[2:] != k:
                raise ValueError(f"weight's kernel {w.shape[2:]} does not match kernel_size={kernel_size!r}")
            self.weight = w
            if self.bias:
                self.b = (_param(b, "b", (self.out_channels,)) if b is not None
                          else np.zeros(self.out_channels, dtype=w.dtype))

    @classmethod
    def from_weights(cls, weight, b=None, stride=1, padding=0, dilation=1, groups=1, trainable=True, name=None):
        """Build a layer around a given kernel ``(C_out, C_in/groups, *k)`` (and bias, if any)."""
        w = as_float_array(weight, "weight")
        check_rank(w, "weight", min_ndim=3, layout="(C_out, C_in/groups, *kernel)")
        return cls(w.shape[0], tuple(w.shape[2:]), stride, padding, dilation, groups, bias=b is not None,
                   weight=w, b=b, trainable=trainable, name=name)

    def _k(self, ndim):
        return int_tuple(self.kernel_size, ndim, "kernel_size")

    def build(self, in_shape, rng):
        c_in = in_shape[0]
        if c_in % self.groups:
            raise ValueError(f"groups={self.groups} must divide the input channels C_in={c_in}")
        shape = (self.out_channels, c_in // self.groups) + self._k(len(in_shape) - 1)
        if self.weight is None:
            fan_in = prod(shape[1:])
            self.weight = _fan_in_uniform(rng, shape, fan_in)
            if self.bias:
                self.b = _fan_in_uniform(rng, (self.out_channels,), fan_in)
        elif self.weight.shape != shape:
            raise ValueError(f"Conv weight of shape {self.weight.shape} does not fit an input with "
                             f"{c_in} channels (expected weight shape {shape})")

    def forward(self, x):
        from .conv import conv

        self._cache = x
        return conv(x, self.weight, self.b, self.stride, self.padding, self.dilation, self.groups)

    def backward(self, dout):
        from .conv import conv_backward

        x = self._cached()
        dx, dw, db = conv_backward(dout, x, self.weight, self.stride, self.padding, self.dilation, self.groups)
        self._store_grads(dw, db)
        return dx

    def output_shape(self, in_shape):
        return _acc.conv_output_shape(in_shape, self.out_channels, self.kernel_size, self.stride,
                                      self.padding, self.dilation)

    def param_count(self, in_shape):
        return _acc.conv_params(in_shape[0], self.out_channels, self.kernel_size, self.groups, self.bias,
                                ndim=len(in_shape) - 1)

    def macs(self, in_shape):
        return _acc.conv_macs(in_shape, self.out_channels, self.kernel_size, self.stride, self.padding,
                              self.dilation, self.groups)

    def hyperparameters(self):
        k = self.kernel_size
        parts = [f"F={k if is_int(k) else 'x'.join(map(str, k))}", f"S={self.stride}", f"P={self.padding}",
                 f"K={self.out_channels}"]
        if self.dilation != 1:
            parts.append(f"D={self.dilation}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("no bias")
        if not self.trainable:
            parts.append("frozen")
        return ", ".join(parts)


class _Activation(Layer):
    """A parameter-free layer wrapping a function ``_fn(x, *args)`` and its backward
    ``_fn_backward(dout, x, *args)``; ``_args()`` supplies the extra arguments."""

    _fn = None
    _fn_backward = None

    def _args(self):
        return ()

    def forward(self, x):
        self._cache = x
        return self._fn(x, *self._args())

    def backward(self, dout):
        return self._fn_backward(dout, self._cached(), *self._args())


class ReLU(_Activation):
    """Element-wise :func:`relu` as a layer."""

    _fn, _fn_backward = staticmethod(relu), staticmethod(relu_backward)


class Sigmoid(_Activation):
    """Element-wise :func:`sigmoid` as a layer."""

    _fn, _fn_backward = staticmethod(sigmoid), staticmethod(sigmoid_backward)


class Softmax(_Activation):
    """:func:`softmax` over the feature axis (axis 1 of ``(N, C, ...)``)."""

    _fn, _fn_backward = staticmethod(softmax), staticmethod(softmax_backward)

    def __init__(self, axis=1):
        super().__init__()
        self.axis = axis

    def _args(self):
        return (self.axis,)

    def hyperparameters(self):
        return f"axis={self.axis}"


class _Pool(Layer):
    _op = None

    def __init__(self, kernel_size, stride=None, padding=0, *, name=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.name = name

    def _ops(self):
        from . import pooling

        return getattr(pooling, self._op), getattr(pooling, self._op + "_backward")

    def forward(self, x):
        self._cache = x
        return self._ops()[0](x, self.kernel_size, self.stride, self.padding)

    def backward(self, dout):
        return self._ops()[1](dout, self._cached(), self.kernel_size, self.stride, self.padding)

    def output_shape(self, in_shape):
        return _acc.pool_output_shape(in_shape, self.kernel_size, self.stride, self.padding)

    def hyperparameters(self):
        k = self.kernel_size
        s = k if self.stride is None else self.stride
        return f"F={k}, S={s}, P={self.padding}"


class MaxPool(_Pool):
    """Max pooling layer (:func:`cnnmath.max_pool`); stride defaults to ``kernel_size``."""

    _op = "max_pool"


class AvgPool(_Pool):
    """Average pooling layer (:func:`cnnmath.avg_pool`); padded zeros count in the average."""

    _op = "avg_pool"


class Flatten(Layer):
    """:func:`flatten` as a layer: ``(N, C, *spatial) -> (N, C * prod(spatial))``."""

    def forward(self, x):
        x = as_float_array(x, "x")
        self._cache = x.shape
        return flatten(x)

    def backward(self, dout):
        return flatten_backward(dout, self._cached())

    def output_shape(self, in_shape):
        return (prod(in_shape),)


class Dense(_WeightedLayer):
    """Fully connected layer (:func:`dense`) with ``N_out`` outputs; ``N_in`` is inferred.

    Parameters
    ----------
    out_features : int
    bias : bool
    weight : array_like, shape (N_out, N_in), optional
        Initial weights (copied), rows per output as in ``torch.nn.Linear``.
    b : array_like, shape (N_out,), optional
    trainable : bool
        See :class:`Conv`.
    """

    def __init__(self, out_features, bias=True, *, weight=None, b=None, trainable=True, name=None):
        super().__init__()
        if not is_int(out_features) or out_features < 1:
            raise ValueError(f"out_features must be a positive int, got {out_features!r}")
        self.out_features = int(out_features)
        self._init_parameters(bias, trainable, name, b)
        if weight is not None:
            w = _param(weight, "weight")
            if w.ndim != 2 or w.shape[0] != self.out_features:
                raise ValueError(f"weight must have shape (N_out={self.out_features}, N_in), got {w.shape}")
            self.weight = w
            if self.bias:
                self.b = (_param(b, "b", (self.out_features,)) if b is not None
                          else np.zeros(self.out_features, dtype=w.dtype))

    @classmethod
    def from_weights(cls, weight, b=None, trainable=True, name=None):
        """Build a layer around given weights ``(N_out, N_in)`` (and bias ``(N_out,)``, if any)."""
        w = as_float_array(weight, "weight")
        check_rank(w, "weight", ndim=2, layout="(N_out, N_in)")
        return cls(w.shape[0], bias=b is not None, weight=w, b=b, trainable=trainable, name=name)

    def build(self, in_shape, rng):
        if len(in_shape) != 1:
            raise ValueError(f"Dense expects a flat input (N_in,), got shape {tuple(in_shape)}; add a Flatten")
        n_in = in_shape[0]
        if self.weight is None:
            self.weight = _fan_in_uniform(rng, (self.out_features, n_in), n_in)
            if self.bias:
                self.b = _fan_in_uniform(rng, (self.out_features,), n_in)
        elif self.weight.shape[1] != n_in:
            raise ValueError(f"Dense weight of shape {self.weight.shape} does not fit {n_in} input features")

    def forward(self, x):
        self._cache = as_float_array(x, "x")
        return dense(self._cache, self.weight, self.b)

    def backward(self, dout):
        dx, dw, db = dense_backward(dout, self._cached(), self.weight)
        self._store_grads(dw, db)
        return dx

    def output_shape(self, in_shape):
        if len(in_shape) != 1:
            raise ValueError(f"Dense expects a flat input (N_in,), got shape {tuple(in_shape)}; add a Flatten")
        return (self.out_features,)

    def param_count(self, in_shape):
        self.output_shape(in_shape)
        return _acc.dense_params(in_shape[0], self.out_features, self.bias)

    def macs(self, in_shape):
        self.output_shape(in_shape)
        return _acc.dense_macs(in_shape[0], self.out_features)

    def hyperparameters(self):
        extra = "" if self.bias else ", no bias"
        return f"{self.out_features} output neurons{extra}" + ("" if self.trainable else ", frozen")


class Sequential:
    """A chain of layers run in order; ``backward`` runs them in reverse.

    Parameters
    ----------
    layers : sequence of Layer
    rng : numpy.random.Generator or int, optional
        Draws the parameters of layers built without explicit weights (at the
        first ``forward``); default ``numpy.random.default_rng(0)``.

    Examples
    --------
    >>> import numpy as np
    >>> net = Sequential([Conv(2, 3), ReLU(), Flatten(), Dense(1)])
    >>> net.forward(np.ones((1, 1, 4, 4))).shape
    (1, 1)
    """

    def __init__(self, layers, rng=None):
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a cnnmath layer object, got {layer!r}")
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
        self._built_for = None

    def build(self, input_shape):
        """Create missing parameters for inputs of ``input_shape`` (no batch) and check the shapes."""
        shape = tuple(input_shape)
        for layer in self.layers:
            layer.build(shape, self.rng)
            shape = tuple(layer.output_shape(shape))
        self._built_for = tuple(input_shape)
        return shape

    def forward(self, x):
        """Run every layer on ``x`` of shape ``(N, *input_shape)``; caches for ``backward``."""
        x = as_float_array(x, "x")
        check_rank(x, "x", min_ndim=2, layout="(N, C, *spatial) or (N, N_in)")
        if self._built_for != x.shape[1:]:
            self.build(x.shape[1:])
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout):
        """Backpropagate the gradient of the loss w.r.t. the output; returns ``dL/dx``.

        Parameter gradients are stored in each layer's ``grads`` (see :meth:`grads`).
        """
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def params(self, trainable_only=False):
        """Parameters by name ``"<layer index>.<weight|bias>"`` (like torch's ``named_parameters``)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params().items()
                if layer.trainable or not trainable_only}

    def grads(self, trainable_only=False):
        """Gradients from the last :meth:`backward`, keyed like :meth:`params`."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()
                if layer.trainable or not trainable_only}

    def summary(self, input_shape, batch_size=1, dtype="float32"):
        """:func:`cnnmath.format_summary` of :func:`cnnmath.summarize` for this network."""
        return _acc.format_summary(_acc.summarize(input_shape, self.layers, batch_size, dtype))

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"


def sgd_step(model, lr):
    """One step of gradient descent on every trainable parameter: ``w <- w - lr dL/dw``.

    Updates the parameters in place (they are the model's own copies) after
    :meth:`Sequential.backward`. Frozen layers (``trainable=False``) are skipped,
    as seed 003's example leaves its kernel ``K`` unchanged.

    Parameters
    ----------
    model : Sequential
    lr : float
        Learning rate ``alpha`` (seed 003: 0.1); must be positive.

    Returns
    -------
    model
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    for i, layer in enumerate(model.layers):
        if not layer.trainable:
            continue
        params, grads = layer.params(), layer.grads
        for key, p in params.items():
            if key not in grads:
                raise RuntimeError(f"layer {i} has no gradient for {key!r}: call backward() before sgd_step()")
            p -= lr * grads[key]
    return model
