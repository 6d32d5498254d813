"""The vectorized convolution paths, and the rule for which one runs when.

Every convolution, its two gradients and the transposed convolution are computed by one of
these paths, all im2col + GEMM (the column layout of :mod:`cnnmath._columns`); they differ only
in how they trade per-call overhead against memory. For a call on a batch of ``N`` images with
geometry ``geo`` (:class:`cnnmath._geometry.Geometry`):

Forward, ``out[n] = W @ cols(x[n])`` with ``W = w.reshape(C_out, -1)`` per group
    * ``"gather"``: the whole batch's columns as one GEMM ``x @ G`` with the geometry's 0/1 im2col
      matrix ``G`` (:func:`cnnmath._columns.gather_matrix`, built once per geometry), padding
      folded in -- two GEMMs and nothing else, for the exercises' few-pixel images;
    * ``"lean"``: the whole batch's columns in one copy and one batched GEMM;
    * ``"blocked"``: one image and one block of about ``block_bytes`` of output rows at a time,
      into reused buffers, written straight into the output: peak extra memory is one block.
      On 2-D stride-1 problems (:func:`cnnmath._columns.takes_wide_columns`) the block's columns
      are *wide* (every padded position of its rows, one contiguous run per channel and tap) and
      the GEMM's rows are cropped: a strided copy of short rows costs more than the extra GEMM work.

Kernel gradient, ``dw = sum_n dout[n] @ cols(x[n])^T`` (seed 004 eq. 9.11)
    * ``"gather"`` / ``"lean"`` / ``"blocked"``: as for the forward;
    * ``"shifted"`` (stride 1, :mod:`cnnmath._conv_shifted`): per image on the flat padded grid, shifted
      copies of both ``dout`` and ``x`` stacked so that each chunk is one GEMM, no strided copy.

Input gradient (seed 004 eq. 9.13): four forms remain, each for a reason, plus the gather form.
    * ``"gather"``: ``(w^T @ dout) @ G^T`` -- col2im and the crop as one GEMM with the transposed
      im2col matrix: on tiny images two GEMMs cost less than ``prod(k)`` scatter-adds.
    * ``"lean"``: ``w^T @ dout`` for the whole batch in one GEMM, then ``prod(k)`` scatter-adds
      (at stride 1 on flattened images, one contiguous add per tap) -- on small problems the
      number of NumPy calls is what costs, and this form makes the fewest.
    * ``"flipped"`` (stride 1 only): a "full" convolution of ``dout`` with the flipped,
      channel-transposed kernel -- no scatter at all, the forward's code and speed, which wins
      on large problems whose GEMM has at least as many rows (C_in) as ``w^T @ dout`` has inputs.
    * ``"shifted"`` (stride 1, :mod:`cnnmath._conv_shifted`): the trailing axes' taps as shifted
      copies of ``dout``, the other taps as GEMM rows added at their shifts -- on 3-D images faster
      than col2im's 27 strided 3-D adds and than the flipped form's 27 copies and thin GEMM;
    * ``"blocked"``: ``col2im(w^T @ dout)`` per image and row block -- any stride, bounded memory,
      the one form left for large strided problems (and large ones with C_out > C_in).

The rule (:func:`route_for`)
    0. *gather* when the geometry's im2col matrix, ``prod(spatial) prod(k) prod(out)`` entries,
       fits in :data:`GATHER_BYTES`: all three take their ``"gather"`` path;
    1. otherwise *lean* when the whole batch's columns, ``N C_in prod(k) prod(out)`` entries, fit in
       :data:`LEAN_BYTES`: all three take their ``"lean"`` path;
    2. otherwise, for 3-D images at stride 1, dx and dw take their ``"shifted"`` paths (the forward
       ``"blocked"``: its shifted form measured no faster and is not kept);
    3. otherwise all three are ``"blocked"``, but dx is ``"flipped"`` when the stride is 1 and either
       ``C_out <= C_in`` or ``dout`` has at most :data:`SMALL_COLUMNS` column entries
       (``dout.size * prod(k)``; per-call overhead dominates there).
    The convolution the flipped form runs is routed by the same rule, afresh.

A :class:`Route` names the path of each of the three; tests force every route through the
registries :data:`FORWARD_PATHS`, :data:`INPUT_GRAD_PATHS` and :data:`WEIGHT_GRAD_PATHS`,
which must list every path function of this module.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ._columns import (BLOCK_BYTES, RowBlockColumns, WideRowBlockColumns, batch_columns, col2im_add,
                       col2im_padded, crop, gather_matrix, rows_per_block, takes_wide_columns)
from ._conv_shifted import input_grad_flat_batch, input_grad_shifted_flat, weight_grad_shifted_flat
from ._geometry import conv_geometry

__all__ = ["Route", "route_for", "forward", "input_grad", "weight_grad", "flipped_transposed_weights",
           "FORWARD_PATHS", "INPUT_GRAD_PATHS", "WEIGHT_GRAD_PATHS", "LEAN_BYTES", "SMALL_COLUMNS",
           "GATHER_BYTES"]

# Geometries whose im2col matrix (prod(spatial) x prod(k) prod(out) entries, see
# cnnmath._columns.gather_matrix) fits in this many bytes take the gather paths: on the exercises'
# few-pixel images, one GEMM with that matrix costs less than the padding copy, the strided
# column copy and (for dx) the prod(k) scatter-adds it replaces.
GATHER_BYTES = 1 << 17

# Problems whose whole-batch columns (N * C_in * prod(k) * prod(out) entries) fit in this many
# bytes take the lean paths: on course-sized calls the blocked paths' bookkeeping costs as much
# as the arithmetic.
LEAN_BYTES = 1 << 19

# Below this many column entries (dout.size * prod(k)) a large stride-1 dx takes the flipped
# form even when C_out > C_in: one im2col copy and one GEMM beat prod(k) strided scatter-adds.
SMALL_COLUMNS = 1 << 18


@dataclass(frozen=True)
class Route:
    """Which path each of forward, input gradient and kernel gradient takes.

    ``flipped_forward`` is the forward path of the convolution the ``"flipped"`` input gradient
    runs (None: chosen for it by :func:`route_for`); ``block_bytes`` sizes the blocked paths'
    column blocks.
    """

    forward: str
    input_grad: str
    weight_grad: str
    block_bytes: int = BLOCK_BYTES
    flipped_forward: str | None = None


def is_lean(n, geo, dtype, lean_bytes=LEAN_BYTES):
    """Rule 1: the whole batch's columns fit in ``lean_bytes``."""
    itemsize = dtype.itemsize if isinstance(dtype, np.dtype) else np.dtype(dtype).itemsize
    return n * geo.c_in * geo.taps * geo.positions * itemsize <= lean_bytes


def is_gathered(geo, dtype, gather_bytes=GATHER_BYTES):
    """Rule 0: the geometry's im2col matrix fits in ``gather_bytes``."""
    itemsize = dtype.itemsize if isinstance(dtype, np.dtype) else np.dtype(dtype).itemsize
    return geo.size * geo.taps * geo.positions * itemsize <= gather_bytes


def route_for(geo, n, dtype, lean_bytes=LEAN_BYTES, small_columns=SMALL_COLUMNS, gather_bytes=GATHER_BYTES):
    """The :class:`Route` the rule of the module docstring picks for ``n`` images of geometry ``geo``."""
    if is_gathered(geo, dtype, gather_bytes):
        return _GATHER
    if is_lean(n, geo, dtype, lean_bytes):
        return _LEAN
    if geo.unit_stride and geo.ndim == 3:
        return _SHIFTED
    dout_columns = n * geo.c_out * geo.positions * geo.taps
    if geo.unit_stride and (geo.c_out <= geo.c_in or dout_columns <= small_columns):
        return _BLOCKED_FLIPPED
    return _BLOCKED


# The rule with its default thresholds, remembered per (geometry, batch, dtype): plain-int calls
# share one Geometry object, so a repeated course call routes in one dictionary look-up.
_default_route = functools.lru_cache(maxsize=1024)(route_for)

_GATHER = Route("gather", "gather", "gather")
_LEAN = Route("lean", "lean", "lean")
_BLOCKED_FLIPPED = Route("blocked", "flipped", "blocked")
_SHIFTED = Route("blocked", "shifted", "shifted")
_BLOCKED = Route("blocked", "blocked", "blocked")


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------

def forward(x, w, geo, dtype, route=None):
    """``conv(x, w)`` without bias: x (N, C_in, *spatial) of ``dtype``, w (C_out, C_in/groups, *k)."""
    route = route or _default_route(geo, x.shape[0], dtype)
    return FORWARD_PATHS[route.forward](x, w, geo, dtype, route)


def forward_gather(x, w, geo, dtype, route):
    """The whole batch's columns as one GEMM with the im2col matrix, then the forward GEMM."""
    n = x.shape[0]
    cols = x.reshape(n * geo.c_in, geo.size).dot(gather_matrix(geo, dtype))
    return _forward_from_columns(cols, w, geo, dtype, n)


def forward_lean(x, w, geo, dtype, route):
    """One im2col copy of the whole batch, one GEMM (batched over images and groups)."""
    return _forward_from_columns(batch_columns(x, geo, dtype), w, geo, dtype, x.shape[0])


def _forward_from_columns(cols, w, geo, dtype, n):
    g, L = geo.groups, geo.positions
    K = geo.c_in * geo.taps  # explicit sizes, not -1: an empty batch must reshape too
    if w.dtype != dtype:
        w = w.astype(dtype)
    if g == 1:  # a 2-D product for one image: np.dot goes to BLAS with less overhead than matmul
        wm = w.reshape(geo.c_out, K)
        out = wm.dot(cols.reshape(K, L)) if n == 1 else np.matmul(wm, cols.reshape(n, K, L))
    else:
        wm = w.reshape(g, geo.c_out // g, -1)
        out = np.matmul(wm, cols.reshape(n, g, K // g, L))
    return out.reshape((n, geo.c_out) + geo.out)


def forward_blocked(x, w, geo, dtype, route):
    """im2col + GEMM per image and block of output rows, written straight into the output."""
    n, g = x.shape[0], geo.groups
    L = geo.positions
    cout_g = geo.c_out // g
    wm = np.ascontiguousarray(w, dtype=dtype).reshape(g, cout_g, -1)
    out = np.empty((n, geo.c_out) + geo.out, dtype=dtype)
    if takes_wide_columns(geo):
        return _forward_blocked_wide(x, wm, geo, dtype, route, out)
    out_m = out.reshape(n, g, cout_g, L)
    columns = RowBlockColumns(geo, geo.c_in, dtype, route.block_bytes)
    row = columns.row
    for i in range(n):
        columns.load(x[i])
        for r0, r1 in columns.blocks:
            cols = columns(r0, r1)
            if g == 1:
                np.matmul(wm[0], cols, out=out_m[i, 0, :, r0 * row:r1 * row])
            else:
                np.matmul(wm, cols.reshape(g, -1, cols.shape[-1]), out=out_m[i, :, :, r0 * row:r1 * row])
    return out


def _forward_blocked_wide(x, wm, geo, dtype, route, out):
    """The blocked forward on wide stride-1 columns (:class:`cnnmath._columns.WideRowBlockColumns`)."""
    g, cout_g = wm.shape[:2]
    columns = WideRowBlockColumns(geo, geo.c_in, dtype, route.block_bytes)
    wide = np.empty((g, cout_g, columns.rows * columns.row), dtype=dtype)
    for i in range(x.shape[0]):
        columns.load(x[i])
        for r0, r1 in columns.blocks:
            cols = columns(r0, r1)
            dst = wide[:, :, :cols.shape[-1]]
            if g == 1:
                np.matmul(wm[0], cols, out=dst[0])
            else:
                np.matmul(wm, cols.reshape(g, -1, cols.shape[-1]), out=dst)
            out[i, :, r0:r1] = columns.crop(dst.reshape(geo.c_out, -1), r0, r1)
    return out


# ---------------------------------------------------------------------------------------------
# Input gradient
# ---------------------------------------------------------------------------------------------

def input_grad(dout, w, geo, n, dtype, route=None):
    """dx (n, C_in, *spatial) of a convolution from dout (n, C_out, *out) of ``dtype`` (seed 004 eq. 9.13)."""
    route = route or _default_route(geo, n, dtype)
    return INPUT_GRAD_PATHS[route.input_grad](dout, w, geo, n, dtype, route)


def flipped_transposed_weights(w, groups):
    """(C_out, C_in/g, *k) -> (C_in, C_out/g, *k) with every kernel flipped in all spatial axes."""
    c_out, cin_g = w.shape[:2]
    k = w.shape[2:]
    wt = w.reshape((groups, c_out // groups, cin_g) + k).swapaxes(1, 2).reshape((groups * cin_g, c_out // groups) + k)
    return wt[(slice(None), slice(None)) + (slice(None, None, -1),) * len(k)]


def input_grad_flipped(dout, w, geo, n, dtype, route):
    """Stride-1 dx as a "full" convolution of dout with the flipped, channel-transposed kernel."""
    if not geo.unit_stride:
        raise ValueError(f"the flipped-kernel input gradient needs stride 1, got stride={geo.s}")
    span = [d * (k - 1) for k, d in zip(geo.k, geo.d)]
    pads = [(e - pb, e - pa) for e, (pb, pa) in zip(span, geo.pads)]
    if any(v < 0 for pair in pads for v in pair):  # padding wider than the kernel: crop dout instead
        dout = dout[(slice(None), slice(None)) + tuple(slice(max(0, -b), dout.shape[2 + i] - max(0, -a))
                                                       for i, (b, a) in enumerate(pads))]
        pads = [(max(0, b), max(0, a)) for b, a in pads]
    wf = flipped_transposed_weights(np.asarray(w, dtype=dtype), geo.groups)
    g2 = conv_geometry(dout.shape, wf.shape, 1, tuple(pads), geo.d, geo.groups)
    inner = None if route.flipped_forward is None else Route(route.flipped_forward, "", "", route.block_bytes)
    return forward(dout, wf, g2, dtype, inner)


def input_grad_gather(dout, w, geo, n, dtype, route):
    """dx = (w^T @ dout) @ G^T for the whole batch: col2im and the crop as one GEMM with the
    transposed im2col matrix ``G`` (two GEMMs in all, no scatter)."""
    g = geo.groups
    cout_g = geo.c_out // g
    wt = w.astype(dtype, copy=False).reshape(g, cout_g, -1).transpose(0, 2, 1)
    if g == 1:
        dcols = np.matmul(wt[0], dout.reshape(n, cout_g, geo.positions))
    else:
        dcols = np.matmul(wt, dout.reshape(n, g, cout_g, geo.positions))
    dx = dcols.reshape(n * geo.c_in, geo.taps * geo.positions).dot(gather_matrix(geo, dtype).T)
    return dx.reshape((n, geo.c_in) + geo.spatial)


def input_grad_lean(dout, w, geo, n, dtype, route):
    """dx = col2im(w^T @ dout) for the whole batch at once (one GEMM, prod(k) adds).

    On tiny problems this beats the flipped-kernel convolution, whose GEMM has only C_in rows
    (BLAS is slow on such thin matrices) and whose im2col copy is C_out / C_in times larger."""
    g = geo.groups
    L = geo.positions
    cout_g = geo.c_out // g
    if geo.unit_stride:
        return input_grad_flat_batch(dout, w, geo, n, dtype)
    wt = w.astype(dtype, copy=False).reshape(g, cout_g, -1).transpose(0, 2, 1)
    if g == 1:
        dcols = np.matmul(wt[0], dout.reshape(n, cout_g, L))
    else:
        dcols = np.matmul(wt, dout.reshape(n, g, cout_g, L))
    dcols = dcols.reshape((n, geo.c_in) + geo.k + geo.out)  # dtype already: wt and dout are cast
    dxp = col2im_padded(dcols, (n, geo.c_in) + geo.padded, geo.k, geo.s, geo.d, geo.out)
    return dxp if geo.unpadded else np.ascontiguousarray(crop(dxp, geo.pads))


def input_grad_shifted(dout, w, geo, n, dtype, route):
    """Stride-1 dx, per image, as shifted products on the flat padded grid (see :mod:`cnnmath._conv_shifted`)."""
    return input_grad_shifted_flat(dout, w, geo, n, dtype, route.block_bytes)


def input_grad_blocked(dout, w, geo, n, dtype, route):
    """dx = col2im(w^T @ dout), per image and block of output rows (any stride)."""
    g = geo.groups
    L = geo.positions
    cout_g = geo.c_out // g
    wt = np.ascontiguousarray(np.asarray(w, dtype=dtype).reshape(g, cout_g, -1).transpose(0, 2, 1))
    K = geo.c_in * geo.taps
    row = math.prod(geo.out[1:])
    rows = rows_per_block(geo, K, np.dtype(dtype).itemsize, route.block_bytes)
    flat = np.empty(K * rows * row, dtype=dtype)
    dx = np.empty((n, geo.c_in) + geo.spatial, dtype=dtype)
    dxp = np.empty((1, geo.c_in) + geo.padded, dtype=dtype)
    s0 = geo.s[0]
    for i in range(n):
        dxp.fill(0)
        dm = dout[i].reshape(g, cout_g, L)
        for r0 in range(0, geo.out[0], rows):
            r1 = min(r0 + rows, geo.out[0])
            dcols = flat[: K * (r1 - r0) * row].reshape(g, -1, (r1 - r0) * row)
            if g == 1:
                np.matmul(wt[0], dm[0, :, r0 * row:r1 * row], out=dcols[0])
            else:
                np.matmul(wt, dm[:, :, r0 * row:r1 * row], out=dcols)
            block_out = (r1 - r0,) + geo.out[1:]
            col2im_add(dcols.reshape((1, geo.c_in) + geo.k + block_out), dxp[:, :, r0 * s0:], geo.k, geo.s,
                       geo.d, block_out)
        dx[i] = crop(dxp, geo.pads)[0]
    return dx


# ---------------------------------------------------------------------------------------------
# Kernel gradient
# ---------------------------------------------------------------------------------------------

def weight_grad(dout, x, geo, dtype, route=None):
    """dw (C_out, C_in/groups, *k) from dout (N, C_out, *out) and x (N, C_in, *spatial) of ``dtype``."""
    route = route or _default_route(geo, x.shape[0], dtype)
    return WEIGHT_GRAD_PATHS[route.weight_grad](dout, x, geo, dtype, route)


def weight_grad_gather(dout, x, geo, dtype, route):
    """The whole batch's columns as one GEMM with the im2col matrix, then the dw GEMM."""
    n = x.shape[0]
    cols = x.reshape(n * geo.c_in, geo.size).dot(gather_matrix(geo, dtype))
    return _weight_grad_from_columns(dout, cols, geo, n)


def weight_grad_lean(dout, x, geo, dtype, route):
    """One im2col copy of the whole batch, one batched GEMM, a sum over images."""
    return _weight_grad_from_columns(dout, batch_columns(x, geo, dtype), geo, x.shape[0])


def _weight_grad_from_columns(dout, cols, geo, n):
    g, L = geo.groups, geo.positions
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    cm = cols.reshape(n, g, cin_g * geo.taps, L)
    dm = dout.reshape(n, g, cout_g, L)
    dw = np.matmul(dm[0], cm[0].transpose(0, 2, 1)) if n == 1 else np.matmul(dm, cm.transpose(0, 1, 3, 2)).sum(0)
    return dw.reshape((geo.c_out, cin_g) + geo.k)


def weight_grad_shifted(dout, x, geo, dtype, route):
    """Stride-1 dw, per image, as one GEMM of shifted copies per chunk (see :mod:`cnnmath._conv_shifted`)."""
    return weight_grad_shifted_flat(dout, x, geo, dtype, route.block_bytes)


def weight_grad_blocked(dout, x, geo, dtype, route):
    """GEMMs per image and row block of the columns, accumulated into dw."""
    n, g = x.shape[0], geo.groups
    L = geo.positions
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    dw = np.zeros((g, cout_g, cin_g * geo.taps), dtype=dtype)
    part = np.empty_like(dw)
    columns = RowBlockColumns(geo, geo.c_in, dtype, route.block_bytes)
    row = columns.row
    for i in range(n):
        columns.load(x[i])
        dm = dout[i].reshape(g, cout_g, L)
        for r0, r1 in columns.blocks:
            cols = columns(r0, r1)
            if g == 1:
                np.matmul(dm[0, :, r0 * row:r1 * row], cols.T, out=part[0])
            else:
                np.matmul(dm[:, :, r0 * row:r1 * row], cols.reshape(g, -1, cols.shape[-1]).transpose(0, 2, 1),
                          out=part)
            dw += part
    return dw.reshape((geo.c_out, cin_g) + geo.k)


# The registries: every path function of this module, by the name a Route gives it.
FORWARD_PATHS = {"gather": forward_gather, "lean": forward_lean, "blocked": forward_blocked}
INPUT_GRAD_PATHS = {"gather": input_grad_gather, "lean": input_grad_lean, "flipped": input_grad_flipped,
                    "shifted": input_grad_shifted, "blocked": input_grad_blocked}
WEIGHT_GRAD_PATHS = {"gather": weight_grad_gather, "lean": weight_grad_lean, "shifted": weight_grad_shifted,
                     "blocked": weight_grad_blocked}
