"""Stride-1 gradients on the flat padded grid (two dx forms and a dw form of :mod:`cnnmath._conv_paths`).

With stride 1, output position ``o`` and kernel tap ``j`` read padded input position ``o + j d``.
Put one image's ``dout`` into a zero grid of the padded input's shape (output ``o`` at padded
position ``o``) and flatten it, and flatten the padded ``dx`` the same way: then tap ``j`` adds
``W_j^T @ grid`` (``W_j`` = the kernel's tap ``j``, ``(C_out, C_in)``) to the flat ``dx`` shifted
by ``flat(j d)``, one contiguous run -- the zeros of the grid contribute nothing wherever they land.
:func:`input_grad_flat_batch` (the lean dx) does this for the whole batch with every tap in one GEMM.

The two plain ways of summing those ``prod(k)`` terms each pay on large problems: all taps in one
GEMM and ``prod(k)`` scatter-adds (``col2im``) re-read a ``prod(k)`` times larger intermediate;
the flipped-kernel convolution copies ``prod(k)`` shifted copies of ``dout`` and runs a GEMM with
only ``C_in`` rows. :func:`input_grad_shifted_flat` (the ``"shifted"`` dx) splits the taps between
the two: the ``T_c`` taps of the last ``m`` axes (:func:`copied_axes`) are ``T_c`` shifted copies of
the grid stacked into one operand (the flipped form's trick), and the other ``T_a = prod(k) / T_c``
taps are row blocks of one GEMM, each added at its shift (the scatter's trick)::

    prods = Wh @ [grid shifted by shift(j) for each copied tap j]     rows (a, c_in), K = T_c C_out
    flat_dx[shift(a) + q] += prods[a, q]                               one add per other tap a

so the GEMM is ``T_a C_in x T_c C_out`` (a shape BLAS runs well), with ``T_c`` copies and ``T_a``
adds per chunk of the flat positions, each chunk about ``block_bytes`` of operands so that all of
it stays in the caches (:func:`weight_grad_shifted_flat` stacks shifted copies of both grids, so
its chunks need no adds at all). Extra memory: one padded image of the source and of the result
plus one chunk. The cost: the GEMM runs over every padded
position, ``prod(padded) / prod(out)`` times the useful work (1.2 on the 32^3 benchmark).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["input_grad_flat_batch", "input_grad_shifted_flat", "weight_grad_shifted_flat",
           "copied_axes", "weight_grad_copied_axes", "tap_offsets"]


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
    """dx (n, C_in, *spatial) of a stride-1 convolution from dout (n, C_out, *out), as the module docstring says:
    ``flat_dx[q + shift(a)] += sum_j (Wh_a @ grid_flat)[q - shift(j)]`` per image, in chunks of ``q``."""
    if not geo.unit_stride:
        raise ValueError(f"the shifted-product input gradient needs stride 1, got stride={geo.s}")
    g = geo.groups
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    t_c = math.prod(geo.k[geo.ndim - copied_axes(geo.k, cout_g, cin_g):])
    t_a = geo.taps // t_c
    # wh[grp, a cin_g + c, j cout_g + l] = w[grp cout_g + l, c, a, j]
    wh = np.ascontiguousarray(w.astype(dtype, copy=False).reshape(g, cout_g, cin_g, t_a, t_c)
                              .transpose(0, 3, 2, 4, 1)).reshape(g, t_a * cin_g, t_c * cout_g)
    offsets = tap_offsets(geo.padded, geo.k, geo.d)
    outer, shifts = offsets[::t_c], offsets[:t_c]  # shift of outer tap a / of copied tap j
    lead = shifts[-1]                    # zeros before and after the grid: the largest copy shift
    size = math.prod(geo.padded)
    total = size + lead                  # flat positions q the GEMM produces
    chunk = max(1, min(total, block_bytes // (np.dtype(dtype).itemsize * (t_a * cin_g + t_c * cout_g))))
    grid = np.zeros((g, cout_g, lead + size + lead), dtype=dtype)
    image = grid[:, :, lead:lead + size].reshape((geo.c_out,) + geo.padded)
    window = (slice(None),) + tuple(slice(0, o) for o in geo.out)
    flat = np.empty((g, cin_g, total + outer[-1]), dtype=dtype)
    stacked = np.empty((g, t_c, cout_g, chunk), dtype=dtype)
    prods = np.empty((g, t_a * cin_g, chunk), dtype=dtype)
    dx = np.empty((n, geo.c_in) + geo.spatial, dtype=dtype)
    for i in range(n):
        image[window] = dout[i]
        flat.fill(0)
        for q0 in range(0, total, chunk):
            q1 = min(q0 + chunk, total)
            m = q1 - q0
            b = stacked[..., :m]
            for j, shift in enumerate(shifts):
                b[:, j] = grid[:, :, lead + q0 - shift:lead + q1 - shift]
            p = prods[:, :, :m]
            np.matmul(wh, b.reshape(g, -1, m), out=p)
            p = p.reshape(g, t_a, cin_g, m)
            for a, off in enumerate(outer):
                flat[:, :, q0 + off:q1 + off] += p[:, a]
        dx[i] = flat[:, :, :size].reshape((geo.c_in,) + geo.padded)[geo.interior[1:]]
    return dx


def copied_axes(k, c_src, c_acc):
    """How many trailing axes' taps the shifted products copy: the ``m`` in ``1..D`` that minimises the
    traffic per flat position, ``2 prod(k[-m:]) c_src`` (a read and a write per copy) plus
    ``3 prod(k[:-m]) c_acc`` (two reads and a write per add); the smallest on a tie. On the 3-D
    benchmark (C_in 16, C_out 32, k 3) it picks the last axis for dx, which measured fastest of the
    three (the flipped form copies all three)."""
    def traffic(m):
        return 2 * math.prod(k[len(k) - m:]) * c_src + 3 * math.prod(k[:len(k) - m]) * c_acc
    return min(range(1, len(k) + 1), key=traffic)


def weight_grad_copied_axes(k, c_out, c_in):
    """The ``m`` in ``1..D`` (smallest on a tie) minimising the rows the shifted dw copies per flat
    position, ``prod(k[:-m]) c_out + prod(k[-m:]) c_in``."""
    return min(range(1, len(k) + 1), key=lambda m: math.prod(k[:len(k) - m]) * c_out + math.prod(k[len(k) - m:]) * c_in)


def weight_grad_shifted_flat(dout, x, geo, dtype, block_bytes):
    """dw (C_out, C_in/groups, *k) of a stride-1 convolution as one GEMM per chunk of flat positions, no adds.

    With ``q = p + shift(a)``, ``dw[l, c, (a, j)] = sum_q dout_flat[l, q - shift(a)] x_flat[c, q + shift(j)]``:
    stack ``T_a`` shifted copies of the dout grid (rows ``(a, l)``) and ``T_c`` of the input grid (rows
    ``(j, c)``), and ``D @ X^T`` is the whole kernel gradient of the chunk, in the layout of ``dw``. The
    copied axes minimise the rows copied per position, ``T_a C_out + T_c C_in``.
    """
    if not geo.unit_stride:
        raise ValueError(f"the shifted-product kernel gradient needs stride 1, got stride={geo.s}")
    g, nd = geo.groups, geo.ndim
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    t_c = math.prod(geo.k[nd - weight_grad_copied_axes(geo.k, cout_g, cin_g):])
    t_a = geo.taps // t_c
    offsets = tap_offsets(geo.padded, geo.k, geo.d)
    outer, shifts = offsets[::t_c], offsets[:t_c]
    front, tail, size = outer[-1], shifts[-1], math.prod(geo.padded)
    chunk = max(1, min(size, block_bytes // (np.dtype(dtype).itemsize * (t_a * cout_g + t_c * cin_g))))
    dgrid = np.zeros((g, cout_g, front + size), dtype=dtype)
    xgrid = np.zeros((g, cin_g, size + tail), dtype=dtype)
    d_image = dgrid[:, :, front:].reshape((geo.c_out,) + geo.padded)
    x_image = xgrid[:, :, :size].reshape((geo.c_in,) + geo.padded)
    window = (slice(None),) + tuple(slice(0, o) for o in geo.out)
    d_stack = np.empty((g, t_a, cout_g, chunk), dtype=dtype)
    x_stack = np.empty((g, t_c, cin_g, chunk), dtype=dtype)
    dw = np.zeros((g, t_a * cout_g, t_c * cin_g), dtype=dtype)
    part = np.empty_like(dw)
    for i in range(x.shape[0]):
        d_image[window] = dout[i]
        x_image[geo.interior[1:]] = x[i]
        for q0 in range(0, size, chunk):
            q1 = min(q0 + chunk, size)
            n_q = q1 - q0
            ds, xs = d_stack[..., :n_q], x_stack[..., :n_q]
            for a, off in enumerate(outer):
                ds[:, a] = dgrid[:, :, front + q0 - off:front + q1 - off]
            for j, off in enumerate(shifts):
                xs[:, j] = xgrid[:, :, q0 + off:q1 + off]
            np.matmul(ds.reshape(g, -1, n_q), xs.reshape(g, -1, n_q).transpose(0, 2, 1), out=part)
            dw += part
    # dw[grp, a cout_g + l, j cin_g + c] -> (C_out, C_in/g, a, j)
    dw = dw.reshape(g, t_a, cout_g, t_c, cin_g).transpose(0, 2, 4, 1, 3)
    return np.ascontiguousarray(dw).reshape((geo.c_out, cin_g) + geo.k)
