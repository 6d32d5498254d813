"""Padding, window views and columns: the one copy of the index arithmetic behind every windowed op.

For a zero-padded input ``xp`` (N, C, *padded), a kernel ``k``, stride ``s``, dilation ``d`` and
output size ``out`` (a :class:`cnnmath._geometry.Geometry`), two read-only strided views of every
window are used (no data is copied)::

    windows view (pooling, local layers):   view[n, c, o, j] = xp[n, c, o s + j d]   (N, C, *out, *k)
    columns view (convolution, im2col):     view[n, c, j, o] = xp[n, c, o s + j d]   (N, C, *k, *out)

which is the index arithmetic of the seeds' strided formula (seed 004 eq. 9.8, 0-based). A copy
of the columns view is im2col (Caffe's / CS231n's layout, rows ``(c, j)``, columns ``o``); its
adjoint, col2im, adds every column entry back where it was read from, looping over the
``prod(k)`` kernel taps only. :class:`RowBlockColumns` makes the columns of one image at a time,
one block of output rows at a time, into buffers reused across a batch.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ._geometry import padded_output_size

__all__ = ["pad_spatial", "sliding_windows", "crop", "column_view", "im2col_padded", "batch_columns",
           "col2im_add", "col2im_padded", "RowBlockColumns", "BLOCK_BYTES", "padded_batch",
           "gather_matrix", "WideRowBlockColumns", "takes_wide_columns", "WIDE_WASTE"]


# Target size of one block of columns (bytes): small enough to stay in the caches between
# the im2col copy and the GEMM that reads it, and to bound peak memory; big enough that each
# GEMM is large (few calls: a multi-threaded BLAS pays a synchronisation per call).
BLOCK_BYTES = 4 << 20


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


def crop(xp, pads):
    """Remove ``(before, after)`` padding from the trailing spatial axes of ``xp`` (N, C, *padded); a view."""
    if all(pb == 0 and pa == 0 for pb, pa in pads):
        return xp
    index = (slice(None), slice(None)) + tuple(slice(pb, xp.shape[2 + i] - pa) for i, (pb, pa) in enumerate(pads))
    return xp[index]


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


def column_view(src, lead, kernel_size, stride, dilation, out):
    """Read-only view ``(*src.shape[:lead], *k, *out)`` of every window of the padded ``src``.

    The kernel-taps-first order of the columns (:func:`sliding_windows` puts the output
    positions first): ``view[..., j, o] = src[..., o * s + j * d]``.
    """
    st = src.strides[lead:]
    shape = src.shape[:lead] + tuple(kernel_size) + tuple(out)
    strides = (src.strides[:lead] + tuple(a * d for a, d in zip(st, dilation))
               + tuple(a * s for a, s in zip(st, stride)))
    if src.flags.c_contiguous:  # cheaper than as_strided, same view
        view = np.ndarray(shape, src.dtype, buffer=src, strides=strides)
        view.flags.writeable = False
        return view
    return np.lib.stride_tricks.as_strided(src, shape=shape, strides=strides, writeable=False)


def _tap_slices(tap, stride, dilation, out):
    """Slices of the padded input read by kernel tap ``tap`` at every output position."""
    return tuple(slice(j * d, j * d + s * (o - 1) + 1, s) for j, s, d, o in zip(tap, stride, dilation, out))


def im2col_padded(xp, kernel_size, stride, dilation, out):
    """im2col of an already padded ``xp`` (N, C, *padded): a contiguous (N, C, *k, *out) array."""
    n, c = xp.shape[:2]
    k = tuple(kernel_size)
    if all(v == 1 for v in k):  # 1x1 kernels: the columns are the (strided) input itself
        view = xp[(slice(None), slice(None)) + _tap_slices((0,) * len(k), stride, dilation, out)]
        return np.ascontiguousarray(view).reshape((n, c) + k + tuple(out))
    return np.ascontiguousarray(column_view(xp, 2, k, stride, dilation, out))


@functools.lru_cache(maxsize=512)
def _column_layout(geo, strides):
    """Shape tail ``(*k, *out)`` and strides of the columns view of a buffer with ``strides`` (bytes)."""
    st = strides[2:]
    return (geo.k + geo.out, strides[:2] + tuple(a * d for a, d in zip(st, geo.d))
            + tuple(a * s for a, s in zip(st, geo.s)))


def padded_batch(x, geo, dtype):
    """``x`` (N, C, *spatial) as a C-contiguous zero-padded (N, C, *padded) array of ``dtype``.

    ``x`` itself when it already is one and needs no padding (never mutate the result)."""
    if geo.unpadded:
        return np.ascontiguousarray(x, dtype=dtype)
    xp = np.zeros(x.shape[:2] + geo.padded, dtype=dtype)  # one zero buffer and one slice copy, no np.pad
    xp[geo.interior] = x
    return xp


def batch_columns(x, geo, dtype):
    """im2col of the whole batch ``x`` (N, C, *spatial) in one copy: a contiguous (N, C, *k, *out) array."""
    src = padded_batch(x, geo, dtype)
    tail, strides = _column_layout(geo, src.strides)
    # A strided view of the contiguous buffer (cheaper than as_strided), copied in C order.
    return np.ndarray(src.shape[:2] + tail, dtype, src, 0, strides).copy()


@functools.lru_cache(maxsize=256)
def gather_matrix(geo, dtype):
    """im2col as a matrix: the read-only 0/1 ``(prod(spatial), prod(k) * prod(out))`` array ``G`` with
    ``cols[c, j, o] = (x[c].ravel() @ G)[j * prod(out) + o]`` (padding folded in: taps that land on
    padding read no input); its transpose is col2im with the crop. Built once per window geometry:
    remembered per Geometry object (the fast look-up of plain-int calls) and by its sizes, so that
    geometries resolved afresh (``padding="same"``, NumPy ints) share one matrix."""
    return _gather_matrix(geo.k, geo.s, geo.d, geo.pads, geo.spatial, geo.out, np.dtype(dtype))


@functools.lru_cache(maxsize=256)
def _gather_matrix(k, s, d, pads, spatial, out, dtype):
    size, L, taps, ndim = math.prod(spatial), math.prod(out), math.prod(k), len(k)
    G = np.zeros((size, taps, L), dtype=dtype)
    o = np.indices(out).reshape(ndim, L)
    for t, tap in enumerate(np.ndindex(*k)):
        pos = [o[i] * s[i] + tap[i] * d[i] - pads[i][0] for i in range(ndim)]
        inside = np.logical_and.reduce([(p >= 0) & (p < n) for p, n in zip(pos, spatial)])
        rows = np.ravel_multi_index([p[inside] for p in pos], spatial) if inside.any() else []
        G[rows, t, np.flatnonzero(inside)] = 1
    G = G.reshape(size, taps * L)
    G.flags.writeable = False
    return G


@functools.lru_cache(maxsize=512)
def _scatter_indices(kernel_size, stride, dilation, out):
    """(destination, source) index pairs of every kernel tap, in tap order: built once per geometry."""
    lead = (slice(None), slice(None))
    return tuple((lead + _tap_slices(tap, stride, dilation, out), lead + tap)
                 for tap in itertools.product(*(range(k) for k in kernel_size)))


def col2im_add(cols, xp, kernel_size, stride, dilation, out):
    """Add the columns ``cols`` (N, C, *k, *out) into the padded array ``xp`` in place (the scatter)."""
    for dst, src in _scatter_indices(tuple(kernel_size), tuple(stride), tuple(dilation), tuple(out)):
        xp[dst] += cols[src]
    return xp


def col2im_padded(cols, padded_shape, kernel_size, stride, dilation, out):
    """Adjoint of :func:`im2col_padded`: cols (N, C, *k, *out) -> padded input (N, C, *padded)."""
    xp = np.zeros(padded_shape, dtype=cols.dtype)
    return col2im_add(cols, xp, tuple(kernel_size), stride, dilation, out)


def rows_per_block(geo, K, itemsize, block_bytes):
    """How many output rows (first spatial axis) of ``K``-row columns fit in ``block_bytes``."""
    row = math.prod(geo.out[1:])
    return max(1, min(geo.out[0], block_bytes // max(1, K * row * itemsize)))


class RowBlockColumns:
    """im2col of one image at a time, one block of output rows at a time, into reused buffers.

    ``columns.load(x_i)`` takes image ``x_i`` (C, *spatial) (copying it into a zero-padded
    buffer when there is padding); ``columns(r0, r1)`` then returns the column matrix
    (C * prod(k), (r1 - r0) * prod(out[1:])) of output rows ``r0:r1`` (rows = first spatial
    axis), in the layout of :func:`cnnmath.im2col`. Blocks hold about ``block_bytes`` so
    that the copy and the GEMM that reads it stay in cache; buffers are allocated once per
    call, so a batch costs no fresh (page-faulting) allocations. A 1x1, stride-1, unpadded
    convolution needs no copy at all.
    """

    def __init__(self, geo, channels, dtype, block_bytes=BLOCK_BYTES):
        self.geo = geo
        self.K = channels * geo.taps
        self.row = math.prod(geo.out[1:])  # output positions per row of the first spatial axis
        self.rows = rows_per_block(geo, self.K, np.dtype(dtype).itemsize, block_bytes)
        self.blocks = [(r0, min(r0 + self.rows, geo.out[0])) for r0 in range(0, geo.out[0], self.rows)]
        self.identity = geo.identity
        self.padded = None
        if not geo.unpadded:
            self.padded = np.zeros((channels,) + geo.padded, dtype=dtype)
            self.interior = (slice(None),) + tuple(slice(pb, pb + n) for n, (pb, _) in zip(geo.spatial, geo.pads))
            self.view = column_view(self.padded, 1, geo.k, geo.s, geo.d, geo.out)
        if not self.identity:
            self.flat = np.empty(self.K * self.rows * self.row, dtype=dtype)
            if self.rows == geo.out[0]:  # one block holds the whole image: shape it once
                self.whole = self.flat.reshape((channels,) + geo.k + geo.out)
                self.whole_matrix = self.flat.reshape(self.K, -1)
        self.src = None

    def load(self, xi):
        geo = self.geo
        if self.identity:
            self.src = xi.reshape(xi.shape[0], -1)
        elif self.padded is not None:
            self.padded[self.interior] = xi
            self.src = self.view
        else:
            self.src = column_view(xi, 1, geo.k, geo.s, geo.d, geo.out)

    def __call__(self, r0, r1):
        if self.identity:
            return self.src[:, r0 * self.row:r1 * self.row]
        if r1 - r0 == self.geo.out[0] and self.rows == r1 - r0:
            np.copyto(self.whole, self.src)
            return self.whole_matrix
        block = self.src[(slice(None),) * (1 + self.geo.ndim) + (slice(r0, r1),)]
        dst = self.flat[: self.K * (r1 - r0) * self.row].reshape(block.shape)
        np.copyto(dst, block)
        return dst.reshape(self.K, -1)


# Wide columns waste the GEMM's work on the positions past the output in every axis but the
# first; past this factor of wasted work (prod(padded[1:]) / prod(out[1:])) the strided copy wins.
WIDE_WASTE = 1.5


def takes_wide_columns(geo):
    """Whether the blocked forward uses :class:`WideRowBlockColumns` for ``geo``: stride 1, two
    spatial axes, not the 1x1 identity, and at most :data:`WIDE_WASTE` wasted work. (On 3-D
    images, whose rows are often a power of two long, the wide GEMM measured slower: not used.)"""
    return (geo.unit_stride and geo.ndim == 2 and not geo.identity
            and math.prod(geo.padded[1:]) <= WIDE_WASTE * math.prod(geo.out[1:]))


class WideRowBlockColumns:
    """Stride-1 columns on the flattened padded image: each (channel, tap) row is one contiguous run.

    With stride 1, output position ``o`` and tap ``j`` read padded position ``o + j d``. On the
    padded image flattened, tap ``j``'s columns over a block of *wide* positions (every padded
    position of output rows ``r0:r1``, not just the ``out[1:]`` first ones of each row) are the
    contiguous run starting at ``flat(r0, 0...) + flat(j d)``, so the im2col copy moves long
    contiguous runs (a strided copy of short rows is several times slower on 3-D images). The GEMM
    then yields wide output rows, of which :meth:`crop` keeps the real positions. Same interface
    as :class:`RowBlockColumns`; ``row`` counts wide positions per output row.
    """

    def __init__(self, geo, channels, dtype, block_bytes=BLOCK_BYTES):
        self.geo = geo
        self.K = channels * geo.taps
        self.row = math.prod(geo.padded[1:])
        self.rows = max(1, min(geo.out[0], block_bytes // max(1, self.K * self.row * np.dtype(dtype).itemsize)))
        self.blocks = [(r0, min(r0 + self.rows, geo.out[0])) for r0 in range(0, geo.out[0], self.rows)]
        size = math.prod(geo.padded)
        pstrides = [math.prod(geo.padded[i + 1:]) for i in range(geo.ndim)]
        reach = sum(di * (ki - 1) * ps for ki, di, ps in zip(geo.k, geo.d, pstrides))
        # zero slack past the image: the last wide positions read up to ``reach`` beyond it
        self.buffer = np.zeros((channels, size + reach), dtype=dtype)
        self.image = self.buffer[:, :size].reshape((channels,) + geo.padded)
        self.interior = geo.interior[1:]
        item = self.buffer.itemsize
        self.shape = (channels,) + geo.k
        self.strides = (self.buffer.strides[0],) + tuple(di * ps * item for di, ps in zip(geo.d, pstrides))
        self.flat = np.empty(self.K * self.rows * self.row, dtype=dtype)
        self.keep = (slice(None), slice(None)) + tuple(slice(0, o) for o in geo.out[1:])

    def load(self, xi):
        self.image[self.interior] = xi

    def __call__(self, r0, r1):
        m = (r1 - r0) * self.row
        view = np.ndarray(self.shape + (m,), self.buffer.dtype, self.buffer, r0 * self.row * self.buffer.itemsize,
                          self.strides + (self.buffer.itemsize,))
        dst = self.flat[: self.K * m].reshape(view.shape)
        np.copyto(dst, view)
        return dst.reshape(self.K, m)

    def crop(self, wide, r0, r1):
        """The real output positions (C, r1 - r0, *out[1:]) of wide GEMM rows ``wide`` (C, (r1 - r0) row)."""
        return wide.reshape((wide.shape[0], r1 - r0) + self.geo.padded[1:])[self.keep]
