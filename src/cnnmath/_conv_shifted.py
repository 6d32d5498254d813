"""Stride-1 input gradients on the flat padded grid (two of the dx forms of :mod:`cnnmath._conv_paths`).

With stride 1, output position ``o`` and kernel tap ``j`` read padded input position ``o + j d``.
Put one image's ``dout`` into a zero grid of the padded input's shape (output ``o`` at padded
position ``o``) and flatten it, and flatten the padded ``dx`` the same way: then tap ``j`` adds
``W_j^T @ grid`` (``W_j`` = the kernel's tap ``j``, ``(C_out, C_in)``) to the flat ``dx`` shifted
by ``flat(j d)``, one contiguous run -- the zeros of the grid contribute nothing wherever they land.
:func:`input_grad_flat_batch` (the lean dx) does this for the whole batch with every tap in one GEMM.

The two plain ways of summing those ``prod(k)`` terms each pay on large problems: all taps in one
GEMM and ``prod(k)`` scatter-adds (``col2im``) re-read a ``prod(k)`` times larger intermediate;
the flipped-kernel convolution copies ``prod(k)`` shifted copies of ``dout`` and runs a GEMM with
only ``C_in`` rows. This path splits the taps between the two: the ``k_last`` taps along the last
axis, whose shifts differ by ``d_last`` elements, are ``k_last`` shifted copies of the grid stacked
into one operand (the flipped form's trick), and the other ``prod(k) / k_last`` taps are rows of
one GEMM whose row blocks are added at their shifts (the scatter's trick)::

    dcols = Wh @ [grid shifted by 0, d_last, ..., (k_last - 1) d_last]     rows (tap a, c_in), K = k_last C_out
    flat_dx[shift(a) + q] += dcols[a, q]                                   one add per tap a of the other axes

and so :func:`input_grad_shifted_flat` (the ``"shifted"`` dx) has a GEMM of about
``prod(k)/k_last C_in x k_last C_out`` (a shape BLAS runs well), ``k_last`` copies and
``prod(k) / k_last`` adds per chunk, and chunks of the flat positions
(about ``block_bytes`` of operands each) keep everything in the caches. Extra memory: one padded
image of ``dout`` and of ``dx`` plus one chunk.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["input_grad_flat_batch", "input_grad_shifted_flat", "tap_offsets"]


@functools.lru_cache(maxsize=256)
def tap_offsets(padded, k, d):
    """Flat offset, in the padded grid ``padded``, of every kernel tap ``j`` (at ``j d``), in tap order."""
    pstrides = [math.prod(padded[i + 1:]) for i in range(len(padded))]  # element strides of the padded grid
    return tuple(sum(j * di * ps for j, di, ps in zip(tap, d, pstrides)) for tap in np.ndindex(*k))


def input_grad_flat_batch(dout, w, geo, n, dtype):
    """Stride-1 dx of the whole batch in one GEMM on the flat padded grid: every tap is one contiguous add.

    With stride 1, output position ``o`` and tap ``j`` read padded position ``o + j d``. Put
    dout, channels first, into a zero ``(C_out, n, *padded)`` grid (output ``o`` at padded
    position ``o``) and flatten it: then ``W_t @ grid`` (``W_t`` = the kernel's tap ``t``,
    ``(C_in, C_out)``, all taps in one GEMM) holds the contribution of tap ``t`` to every
    ``(channel, image, position)``, to be added to the flat padded dx shifted by ``flat(j d)``:
    one contiguous add per tap over all images and channels. The zeros of the grid contribute
    nothing wherever they land; nonzero entries never cross an image's boundary.
    """
    g = geo.groups
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    P = geo.padded
    size = math.prod(P)
    span = n * size
    grid = np.zeros((geo.c_out, n) + P, dtype=dtype)
    grid[(slice(None), slice(None)) + tuple(slice(0, o) for o in geo.out)] = dout.swapaxes(0, 1)
    # rows (group, tap, channel in group): the taps of a group are contiguous blocks
    wt = w.astype(dtype, copy=False).reshape(g, cout_g, cin_g, geo.taps).transpose(0, 3, 2, 1)
    dcols = np.matmul(wt.reshape(g, geo.taps * cin_g, cout_g), grid.reshape(g, cout_g, span))
    dcols = dcols.reshape(g, geo.taps, cin_g * span)
    offsets = tap_offsets(P, geo.k, geo.d)
    flat = np.zeros((g, cin_g * span + offsets[-1]), dtype=dtype)
    for t, off in enumerate(offsets):
        flat[:, off:off + cin_g * span] += dcols[:, t]
    dxp = flat[:, :cin_g * span].reshape((geo.c_in, n) + P)
    return np.ascontiguousarray(dxp[geo.interior].swapaxes(0, 1))


def input_grad_shifted_flat(dout, w, geo, n, dtype, block_bytes):
    """dx (n, C_in, *spatial) of a stride-1 convolution from dout (n, C_out, *out), as the module docstring says."""
    if not geo.unit_stride:
        raise ValueError(f"the shifted-product input gradient needs stride 1, got stride={geo.s}")
    g = geo.groups
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    kl, dl = geo.k[-1], geo.d[-1]
    a_taps = geo.taps // kl
    lead = (kl - 1) * dl                     # zeros before (and after) the grid: the largest copy shift
    size = math.prod(geo.padded)
    offsets = tap_offsets(geo.padded, geo.k, geo.d)[::kl]  # shift of tap (a, last index 0)
    total = size + lead                      # flat positions q the stacked GEMM produces
    itemsize = np.dtype(dtype).itemsize
    chunk = max(1, min(total, block_bytes // (itemsize * (a_taps * cin_g + kl * cout_g))))
    # wh[grp, a cin_g + c, j cout_g + l] = w[grp cout_g + l, c, a, j]
    wh = np.ascontiguousarray(w.astype(dtype, copy=False).reshape(g, cout_g, cin_g, a_taps, kl)
                              .transpose(0, 3, 2, 4, 1).reshape(g, a_taps * cin_g, kl * cout_g))
    grid = np.zeros((g, cout_g, lead + size + lead), dtype=dtype)
    window = (slice(None), slice(None)) + tuple(slice(0, o) for o in geo.out)
    grid_image = grid[:, :, lead:lead + size].reshape((geo.c_out,) + geo.padded)
    flat = np.empty((g, cin_g, total + offsets[-1]), dtype=dtype)
    stacked = np.empty((g, kl, cout_g, chunk), dtype=dtype)
    dcols = np.empty((g, a_taps * cin_g, chunk), dtype=dtype)
    dx = np.empty((n, geo.c_in) + geo.spatial, dtype=dtype)
    for i in range(n):
        grid_image[window[1:]] = dout[i]
        flat.fill(0)
        for q0 in range(0, total, chunk):
            q1 = min(q0 + chunk, total)
            m = q1 - q0
            b = stacked[:, :, :, :m]
            for j in range(kl):
                b[:, j] = grid[:, :, lead + q0 - j * dl:lead + q1 - j * dl]
            d = dcols[:, :, :m]
            np.matmul(wh, b.reshape(g, kl * cout_g, m), out=d)
            d = d.reshape(g, a_taps, cin_g, m)
            for a, off in enumerate(offsets):
                flat[:, :, q0 + off:q1 + off] += d[:, a]
        dxp = flat[:, :, :size].reshape((geo.c_in,) + geo.padded)
        dx[i] = dxp[geo.interior[1:]]
    return dx
