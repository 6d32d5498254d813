"""Argument checks shared by the modules of :mod:`cnnmath.nn`."""

from __future__ import annotations

from .._args import as_float_array, is_int, result_dtype

__all__ = ["same_shape", "upstream", "axis_index"]


def same_shape(dout, x, what="dout", of="x"):
    """``dout`` as a float array, checked to have the shape of ``x`` (named ``of`` in the error)."""
    dout = as_float_array(dout, what)
    if dout.shape != x.shape:
        raise ValueError(f"{what} must have the shape of {of} {x.shape}, got {dout.shape}")
    return dout


def upstream(dout, x, name="dout"):
    """An upstream gradient shaped like ``x``, in the promoted dtype of the two."""
    d = same_shape(dout, x, name)
    return d.astype(result_dtype(d, x), copy=False)


def axis_index(axis, ndim):
    """``axis`` as a non-negative axis of an ``ndim``-D array."""
    if not is_int(axis) or not -ndim <= axis < ndim:
        raise ValueError(f"axis must be an int in [{-ndim}, {ndim}), got {axis!r}")
    return axis % ndim
