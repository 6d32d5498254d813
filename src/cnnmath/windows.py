"""Padding and sliding-window views: the one primitive every windowed operation uses.

A window view of a padded input ``xp`` of shape ``(N, C, *spatial)`` has shape
``(N, C, *out, *kernel)`` and element

    view[n, c, o_1..o_D, j_1..j_D] = xp[n, c, o_1 s_1 + j_1 d_1, ..., o_D s_D + j_D d_D]

which is the index arithmetic of the seeds' strided formula (seed 004 eq. 9.8,
written 0-based). It is a read-only strided view: no data is copied.
"""

from __future__ import annotations

import numpy as np

from .sizes import padded_output_size

__all__ = ["pad_spatial", "sliding_windows"]


def pad_spatial(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """Pad the trailing spatial dimensions of ``x`` (N, C, *spatial) with ``value``.

    ``pads`` is a sequence of ``(before, after)`` pairs, one per spatial dimension.
    Returns ``x`` itself when no padding is needed (never mutate the result).
    """
    if all(pb == 0 and pa == 0 for pb, pa in pads):
        return x
    lead = x.shape[: x.ndim - len(pads)]
    spatial = x.shape[len(lead):]
    shape = lead + tuple(n + pb + pa for n, (pb, pa) in zip(spatial, pads))
    # A filled array and one slice assignment: np.pad's result without its per-call overhead.
    xp = np.zeros(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    xp[(Ellipsis,) + tuple(slice(pb, pb + n) for n, (pb, _) in zip(spatial, pads))] = x
    return xp


def sliding_windows(xp: np.ndarray, kernel_size, stride, dilation) -> np.ndarray:
    """Read-only view ``(N, C, *out, *kernel)`` of every window of the padded input ``xp``."""
    ndim = len(kernel_size)
    spatial = xp.shape[-ndim:]
    out = padded_output_size(spatial, kernel_size, stride, [(0, 0)] * ndim, dilation)
    st = xp.strides[-ndim:]
    shape = xp.shape[:-ndim] + tuple(out) + tuple(kernel_size)
    strides = (xp.strides[:-ndim] + tuple(a * s for a, s in zip(st, stride))
               + tuple(a * d for a, d in zip(st, dilation)))
    return np.lib.stride_tricks.as_strided(xp, shape=shape, strides=strides, writeable=False)
