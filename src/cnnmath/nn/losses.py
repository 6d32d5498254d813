"""Losses and their gradients: the seed's MSE and cross-entropy, and cross-entropy from logits.

Formulas (seed 003 section I)::

    MSE        L    = 1/2 sum_i (yhat_i - t_i)^2      dL/dyhat_i = yhat_i - t_i
    CE         L    = - sum_i t_i log yhat_i          dL/dyhat_i = - t_i / yhat_i

See :mod:`cnnmath.nn` for how the reductions compare with PyTorch's.
"""

from __future__ import annotations

import numpy as np

from .._args import as_float_array, check_rank, result_dtype
from ._checks import axis_index
from .functional import log_softmax, softmax

__all__ = ["mse_loss", "mse_loss_backward", "cross_entropy", "cross_entropy_backward",
           "cross_entropy_from_logits", "cross_entropy_from_logits_backward"]


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
    axis = axis_index(axis, yhat.ndim)
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
    axis = axis_index(axis, yhat.ndim)
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
    axis = axis_index(axis, z.ndim)
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
    axis = axis_index(axis, z.ndim)
    t = _targets(t, z, axis, "z")
    grad = softmax(z, axis) * np.sum(t, axis=axis, keepdims=True) - t
    scale = float(dout) / (_n_samples(z, axis) if reduction == "mean" else 1)
    return (grad * scale).astype(z.dtype, copy=False)
