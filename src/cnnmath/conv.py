"""Convolution (deep-learning style, i.e. cross-correlation) in any number of spatial dimensions.

Shapes (channels-first, 0-based indices, dilation counting from 1 as in PyTorch)::

    x   : (N, C_in, n_1, ..., n_D)
    w   : (C_out, C_in / groups, k_1, ..., k_D)
    b   : (C_out,) or None
    out : (N, C_out, o_1, ..., o_D),
          o_i = floor((n_i + p_before_i + p_after_i - d_i (k_i - 1) - 1) / s_i) + 1

The forward pass is seed 004 eq. 9.7 (stride 1) and eq. 9.8 (stride ``s``), written
0-based and with padding, dilation and groups. For output channel ``l`` in group
``g = l // (C_out / groups)`` and ``xp`` the zero-padded input::

    out[n, l, o] = b[l] + sum_{i < C_in/groups} sum_{j} xp[n, g C_in/groups + i, o s + j d] w[l, i, j]

The backward pass is eq. 9.11 (kernel gradient) and eq. 9.13 (input gradient)::

    dw[l, i, j]  = sum_{n, o} dout[n, l, o] xp[n, g C_in/groups + i, o s + j d]
    dxp[n, c, a] = sum_{l in group of c} sum_{o, j : o s + j d = a} w[l, c mod (C_in/groups), j] dout[n, l, o]
    db[l]        = sum_{n, o} dout[n, l, o]

The fast path (:func:`conv`, :func:`conv_backward`) is im2col + GEMM (see
:mod:`cnnmath.im2col` for the column layout), one image at a time into buffers reused
across the batch, so that peak extra memory is one image's columns:

* forward: ``out[n] = W @ cols(x[n])`` with ``W = w.reshape(C_out, -1)`` (per group);
* dw:      ``dw = sum_n dout[n] @ cols(x[n])^T``;
* dx:      stride 1 and ``C_out <= C_in``: a "full" convolution of ``dout`` with the flipped,
  channel-transposed kernel (the forward code again, no scatter); otherwise
  ``col2im(W^T @ dout[n])``, whose loop runs over the ``prod(k)`` kernel offsets only.

Small problems (whole-batch columns of at most ``_LEAN_BYTES``, e.g. course-sized calls) take a
lean path instead, where per-call overhead matters more than memory: one im2col copy of the
whole batch and one (batched) GEMM for forward and dw; dx as ``w^T @ dout`` for the whole batch
and ``prod(k)`` adds -- at stride 1 on flattened images with ``dout`` widened by zeros to the
padded grid, so that every add is one contiguous shifted slice. Plain-int hyper-parameters
resolve to a cached geometry.

The naive twins (:func:`conv_naive`, :func:`conv_backward_naive`) are plain loops over
the formulas above; the tests assert both agree with each other and with PyTorch.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._args import as_float_array, check_groups, check_rank, int_tuple, resolve_padding, result_dtype
from .im2col import _col2im_add, _col2im_padded, _crop, _window_view
from .sizes import padded_output_size
from .windows import pad_spatial

__all__ = [
    "conv",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_backward",
    "conv_input_grad",
    "conv_weight_grad",
    "conv_naive",
    "conv_backward_naive",
]


# Below this many column entries (dout.size * prod(k)) a stride-1 dx always takes the
# flipped-kernel path: one im2col copy and one GEMM beat prod(k) small scatter-adds.
_SMALL_COLUMNS = 1 << 18


def _fast_ints(value, ndim, name):
    """:func:`int_tuple` with a fast path for plain ints and tuples of plain ints (a course-sized
    call is dominated by this bookkeeping); anything unusual goes through the full checks."""
    if type(value) is int and value >= 1:
        return (value,) * ndim
    if type(value) is tuple and len(value) == ndim and all(type(v) is int and v >= 1 for v in value):
        return value
    return int_tuple(value, ndim, name)


def _fast_pads(padding, ndim, k, s, d):
    """:func:`resolve_padding` with a fast path for an int and for resolved (before, after) pairs."""
    if type(padding) is int and padding >= 0:
        return ((padding, padding),) * ndim
    if (type(padding) is tuple and len(padding) == ndim
            and all(type(p) is tuple and len(p) == 2 and type(p[0]) is int and type(p[1]) is int
                    and p[0] >= 0 and p[1] >= 0 for p in padding)):
        return padding
    return resolve_padding(padding, ndim, k, s, d)


class _Geometry:
    """Resolved hyper-parameters of one convolution call."""

    __slots__ = ("ndim", "k", "s", "d", "pads", "out", "groups", "c_in", "c_out", "spatial")

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups, what="kernel_size"):
        self.ndim = len(x_shape) - 2
        self.k = tuple(int(v) for v in w_shape[2:])
        self.s = _fast_ints(stride, self.ndim, "stride")
        self.d = _fast_ints(dilation, self.ndim, "dilation")
        self.pads = _fast_pads(padding, self.ndim, self.k, self.s, self.d)
        self.c_in = int(x_shape[1])
        self.c_out = int(w_shape[0])
        self.groups = check_groups(groups, self.c_in, self.c_out)
        if w_shape[1] * self.groups != self.c_in:
            raise ValueError(
                f"channels mismatch: x has C_in={self.c_in} channels but w of shape {tuple(w_shape)} "
                f"with groups={self.groups} expects C_in = w.shape[1] * groups = {w_shape[1] * self.groups}"
            )
        self.spatial = tuple(int(v) for v in x_shape[2:])
        self.out = padded_output_size(self.spatial, self.k, self.s, self.pads, self.d, what=what)

    @property
    def padded(self):
        return tuple(n + pb + pa for n, (pb, pa) in zip(self.spatial, self.pads))


_GEOMETRIES = {}


def _geometry(x_shape, w_shape, stride, padding, dilation, groups):
    """:class:`_Geometry`, remembered for calls whose hyper-parameters are plain ints (the usual
    course call): resolving them again costs as much as a tiny convolution. Anything else (tuples,
    strings, NumPy ints, bools...) is resolved, and checked, afresh every time."""
    if type(stride) is int and type(padding) is int and type(dilation) is int and type(groups) is int:
        key = (x_shape, w_shape, stride, padding, dilation, groups)
        geo = _GEOMETRIES.get(key)
        if geo is None:
            geo = _Geometry(x_shape, w_shape, stride, padding, dilation, groups)
            if len(_GEOMETRIES) >= 256:
                _GEOMETRIES.clear()
            _GEOMETRIES[key] = geo
        return geo
    return _Geometry(x_shape, w_shape, stride, padding, dilation, groups)


_LAYOUTS = {1: "(N, C_in, L)", 2: "(N, C_in, H, W)", 3: "(N, C_in, D, H, W)"}
_W_LAYOUTS = {1: "(C_out, C_in/groups, kL)", 2: "(C_out, C_in/groups, kH, kW)",
              3: "(C_out, C_in/groups, kD, kH, kW)"}


def _check_x_w(x, w, w_layout="(C_out, C_in/groups, *kernel)"):
    """Convert ``x`` (N, C_in, *spatial) and ``w`` (``w_layout``, same rank as ``x``) to float arrays."""
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    check_rank(x, "x", min_ndim=3, layout="(N, C_in, *spatial)")
    check_rank(w, "w", ndim=x.ndim, layout=f"{w_layout} with as many kernel dims as x has spatial dims")
    return x, w


def _check_bias(b, c_out, dtype):
    if b is None:
        return None
    b = as_float_array(b, "b")
    if b.shape != (c_out,):
        raise ValueError(f"b must have shape (C_out,) = ({c_out},), got shape {b.shape}")
    return b.astype(dtype, copy=False)


class _Columns:
    """im2col of one image at a time, one block of output rows at a time, into reused buffers.

    ``columns.load(x_i)`` takes image ``x_i`` (C, *spatial) (copying it into a zero-padded
    buffer when there is padding); ``columns(r0, r1)`` then returns the column matrix
    (C * prod(k), (r1 - r0) * prod(out[1:])) of output rows ``r0:r1`` (rows = first spatial
    axis), in the layout of :func:`cnnmath.im2col`. Blocks hold about ``_BLOCK_BYTES`` so
    that the copy and the GEMM that reads it stay in cache; buffers are allocated once per
    call, so a batch costs no fresh (page-faulting) allocations. A 1x1, stride-1, unpadded
    convolution needs no copy at all.
    """

    def __init__(self, geo, channels, dtype):
        self.geo = geo
        itemsize = np.dtype(dtype).itemsize
        self.K = channels * math.prod(geo.k)
        self.row = math.prod(geo.out[1:])  # output positions per row of the first spatial axis
        self.rows = max(1, min(geo.out[0], _BLOCK_BYTES // max(1, self.K * self.row * itemsize)))
        self.blocks = [(r0, min(r0 + self.rows, geo.out[0])) for r0 in range(0, geo.out[0], self.rows)]
        self.identity = (all(v == 1 for v in geo.k) and all(v == 1 for v in geo.s)
                         and not any(v for pair in geo.pads for v in pair))
        self.padded = None
        if any(v for pair in geo.pads for v in pair):
            self.padded = np.zeros((channels,) + geo.padded, dtype=dtype)
            self.interior = (slice(None),) + tuple(slice(pb, pb + n) for n, (pb, _) in zip(geo.spatial, geo.pads))
            self.view = self._windows(self.padded)
        if not self.identity:
            self.flat = np.empty(self.K * self.rows * self.row, dtype=dtype)
            if self.rows == geo.out[0]:  # one block holds the whole image: shape it once
                self.whole = self.flat.reshape((channels,) + geo.k + geo.out)
                self.whole_matrix = self.flat.reshape(self.K, -1)
        self.src = None

    def _windows(self, src):
        """Read-only (C, *k, *out) window view of one (padded) image ``src`` (C, *padded)."""
        geo = self.geo
        return _window_view(src, 1, geo.k, geo.s, geo.d, geo.out)

    def load(self, xi):
        if self.identity:
            self.src = xi.reshape(xi.shape[0], -1)
        elif self.padded is not None:
            self.padded[self.interior] = xi
            self.src = self.view
        else:
            self.src = self._windows(xi)

    def __call__(self, r0, r1):
        if self.identity:
            return self.src[:, r0 * self.row:r1 * self.row]
        if r1 - r0 == self.geo.out[0] and self.rows == r1 - r0:
            np.copyto(self.whole, self.src)
            return self.whole_matrix
        nd = len(self.geo.k)
        block = self.src[(slice(None),) * (1 + nd) + (slice(r0, r1),)]
        dst = self.flat[: self.K * (r1 - r0) * self.row].reshape(block.shape)
        np.copyto(dst, block)
        return dst.reshape(self.K, -1)


# Target size of one block of columns (bytes): small enough to stay in the caches between
# the im2col copy and the GEMM that reads it, and to bound peak memory; big enough that each
# GEMM is large (few calls: a multi-threaded BLAS pays a synchronisation per call).
_BLOCK_BYTES = 4 << 20


# Problems whose whole-batch columns (N * C_in * prod(k) * prod(out) entries) fit in this many
# bytes take the lean path: one im2col copy of the whole batch and one (batched) GEMM, no row
# blocks and no reused buffers. On course-sized calls the blocked path's bookkeeping costs as
# much as the arithmetic.
_LEAN_BYTES = 1 << 19


def _is_lean(n, channels, geo, dtype):
    return n * channels * math.prod(geo.k) * math.prod(geo.out) * np.dtype(dtype).itemsize <= _LEAN_BYTES


def _batch_columns(x, geo, dtype):
    """im2col of the whole batch in one copy: a contiguous (N, C, *k, *out) array."""
    view = _window_view(pad_spatial(x, geo.pads), 2, geo.k, geo.s, geo.d, geo.out)
    cols = np.empty(view.shape, dtype=dtype)
    np.copyto(cols, view)
    return cols


def _forward_lean(x, w, geo, dtype):
    """Small problems: one im2col copy of the whole batch, one GEMM (batched over images and groups)."""
    n, g = x.shape[0], geo.groups
    L = math.prod(geo.out)
    cols = _batch_columns(x, geo, dtype)
    wm = w.astype(dtype, copy=False).reshape(g, geo.c_out // g, -1)
    K = geo.c_in * math.prod(geo.k)  # explicit sizes, not -1: an empty batch must reshape too
    if g == 1:
        out = np.matmul(wm[0], cols.reshape(n, K, L))
    else:
        out = np.matmul(wm, cols.reshape(n, g, K // g, L))
    return out.reshape((n, geo.c_out) + geo.out)


def _forward(x, w, geo, dtype):
    """im2col + GEMM per image and block of output rows, written straight into the output."""
    n = x.shape[0]
    if _is_lean(n, geo.c_in, geo, dtype):
        return _forward_lean(x, w, geo, dtype)
    g = geo.groups
    L = math.prod(geo.out)
    cout_g = geo.c_out // g
    wm = np.ascontiguousarray(w, dtype=dtype).reshape(g, cout_g, -1)
    out = np.empty((n, geo.c_out) + geo.out, dtype=dtype)
    out_m = out.reshape(n, g, cout_g, L)
    columns = _Columns(geo, geo.c_in, dtype)
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


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolution (cross-correlation) of a batch with a filter bank, any number of spatial dims.

    Implements seed 004 eq. 9.7/9.8 (0-based) with padding, dilation and groups;
    returns what ``torch.nn.functional.conv{1,2,3}d`` returns for the same arguments.

    Parameters
    ----------
    x : array_like, shape (N, C_in, *spatial)
        Input batch, channels-first, ``D = x.ndim - 2 >= 1`` spatial dimensions.
    w : array_like, shape (C_out, C_in / groups, *kernel)
        Filters; ``len(kernel) == D``.
    b : array_like, shape (C_out,), optional
        Bias added to every output position of each channel.
    stride, dilation : int or tuple of D ints, >= 1
        Step between windows and spacing between kernel taps (``d = 1``: ordinary kernel).
    padding : int, tuple of D ints, tuple of D (before, after) pairs, "valid", "same" or "full"
        Zero padding. ``"same"`` needs stride 1 and keeps the size (odd extra after, as torch);
        ``"full"`` pads ``d (k - 1)`` on both sides.
    groups : int
        Split the channels into ``groups`` independent convolutions; must divide C_in and C_out.
        ``groups == C_in`` is a depthwise convolution.

    Returns
    -------
    out : ndarray, shape (N, C_out, *out)
        ``out_i = floor((n_i + p_before + p_after - d_i (k_i - 1) - 1) / s_i) + 1``.
        dtype: the promoted float dtype of x and w (float32 stays float32, integers -> float64);
        ``b`` is cast to it.

    Raises
    ------
    ValueError
        Wrong rank, channel mismatch, kernel larger than the padded input, stride or
        dilation < 1, negative padding, "same" with stride > 1, groups not dividing the channels.
    TypeError
        Non-numeric arrays or malformed hyper-parameters.
    """
    x, w = _check_x_w(x, w)
    geo = _geometry(x.shape, w.shape, stride, padding, dilation, groups)
    dtype = result_dtype(x, w)  # the bias is cast to it (as torch requires matching dtypes)
    b = _check_bias(b, geo.c_out, dtype)
    out = _forward(x.astype(dtype, copy=False), w, geo, dtype)
    if b is not None:
        out += b.reshape((-1,) + (1,) * geo.ndim)
    return out


def _conv_nd(ndim, name):
    layout = _LAYOUTS[ndim]

    def f(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        x = as_float_array(x, "x")
        w = as_float_array(w, "w")
        check_rank(w, "w", ndim=ndim + 2, layout=_W_LAYOUTS[ndim])
        if x.ndim == ndim + 1:  # unbatched input, as torch accepts: (C_in, *spatial)
            return conv(x[None], w, b, stride, padding, dilation, groups)[0]
        check_rank(x, "x", ndim=ndim + 2, layout=layout + " or unbatched (C_in, *spatial)")
        return conv(x, w, b, stride, padding, dilation, groups)

    f.__name__ = name
    f.__qualname__ = name
    f.__doc__ = f"""{ndim}-D convolution: :func:`conv` after checking that ``x`` is {layout}.

    Like ``torch.nn.functional.{name}``, an unbatched input ``(C_in, *spatial)`` of rank
    {ndim + 1} is accepted and gives an unbatched output. ``w`` must be
    ``(C_out, C_in / groups, {', '.join('k' + str(i + 1) for i in range(ndim))})``.
    See :func:`conv` for the parameters, output size and errors.
    """
    return f


conv1d = _conv_nd(1, "conv1d")
conv2d = _conv_nd(2, "conv2d")
conv3d = _conv_nd(3, "conv3d")


def _check_dout(dout, n, geo, dtype):
    dout = as_float_array(dout, "dout")
    expected = (n, geo.c_out) + geo.out
    if dout.shape != expected:
        raise ValueError(f"dout must have the output's shape {expected}, got {dout.shape}")
    return dout.astype(dtype, copy=False)


def _flipped_transposed_weights(w, groups):
    """(C_out, C_in/g, *k) -> (C_in, C_out/g, *k) with every kernel flipped in all spatial axes."""
    c_out, cin_g = w.shape[:2]
    k = w.shape[2:]
    wt = w.reshape((groups, c_out // groups, cin_g) + k).swapaxes(1, 2).reshape((groups * cin_g, c_out // groups) + k)
    return wt[(slice(None), slice(None)) + (slice(None, None, -1),) * len(k)]


def _input_grad(dout, w, geo, n, dtype):
    """dx of a convolution (seed 004 eq. 9.13), two equivalent vectorized forms.

    * stride 1 and (C_out <= C_in or a small problem): dx is a "full" convolution of dout with the flipped,
      channel-transposed kernel: im2col of dout + one GEMM (no scatter at all);
    * otherwise: dcols = w^T @ dout, then col2im (prod(k) strided adds), per image and row block.
    """
    if _is_lean(n, geo.c_in, geo, dtype):
        return _input_grad_lean(dout, w, geo, n, dtype)
    small = dout.size * math.prod(geo.k) <= _SMALL_COLUMNS  # per-call overhead dominates: fewer numpy calls
    if all(v == 1 for v in geo.s) and (geo.c_out <= geo.c_in or small):
        return _input_grad_flipped(dout, w, geo, dtype)
    return _input_grad_col2im(dout, w, geo, n, dtype)


def _input_grad_flipped(dout, w, geo, dtype):
    """Stride-1 dx as a convolution of dout with the flipped, channel-transposed kernel."""
    span = [d * (k - 1) for k, d in zip(geo.k, geo.d)]
    pads = [(e - pb, e - pa) for e, (pb, pa) in zip(span, geo.pads)]
    if any(v < 0 for pair in pads for v in pair):  # padding wider than the kernel: crop dout instead
        dout = dout[(slice(None), slice(None)) + tuple(slice(max(0, -b), dout.shape[2 + i] - max(0, -a))
                                                       for i, (b, a) in enumerate(pads))]
        pads = [(max(0, b), max(0, a)) for b, a in pads]
    wf = _flipped_transposed_weights(np.asarray(w, dtype=dtype), geo.groups)
    g2 = _Geometry(dout.shape, wf.shape, 1, tuple(pads), geo.d, geo.groups)
    return _forward(dout, wf, g2, dtype)


def _input_grad_lean(dout, w, geo, n, dtype):
    """Small problems: dx = col2im(w^T @ dout) for the whole batch at once (one GEMM, prod(k) adds).

    On tiny problems this beats the flipped-kernel convolution, whose GEMM has only C_in rows
    (BLAS is slow on such thin matrices) and whose im2col copy is C_out / C_in times larger."""
    g = geo.groups
    L = math.prod(geo.out)
    cout_g = geo.c_out // g
    wt = w.astype(dtype, copy=False).reshape(g, cout_g, -1).transpose(0, 2, 1)
    if all(v == 1 for v in geo.s):
        return _input_grad_lean_wide(dout, wt, geo, n, dtype)
    if g == 1:
        dcols = np.matmul(wt[0], dout.reshape(n, cout_g, L))
    else:
        dcols = np.matmul(wt, dout.reshape(n, g, cout_g, L))
    dcols = dcols.reshape((n, geo.c_in) + geo.k + geo.out)  # dtype already: wt and dout are cast
    dxp = _col2im_padded(dcols, (n, geo.c_in) + geo.padded, geo.k, geo.s, geo.d, geo.out)
    if any(v for pair in geo.pads for v in pair):
        return np.ascontiguousarray(_crop(dxp, geo.pads))
    return dxp


@functools.lru_cache(maxsize=256)
def _tap_offsets(padded, k, d):
    """Flat offset, in the padded grid ``padded``, of every kernel tap ``j`` (at ``j d``), in tap order."""
    pstrides = [math.prod(padded[i + 1:]) for i in range(len(padded))]  # element strides of the padded grid
    return tuple(sum(j * di * ps for j, di, ps in zip(tap, d, pstrides)) for tap in np.ndindex(*k))


def _input_grad_lean_wide(dout, wt, geo, n, dtype):
    """Stride-1 scatter on flattened images: every kernel tap is then one contiguous add.

    With stride 1 the output grid is the padded grid minus ``d (k - 1)``. Widen dout with zeros
    to the padded size in every axis but the first, so that output position ``o`` and tap ``j``
    land at flat padded index ``flat(o) + flat(j d)``: the columns of tap ``j`` (one row of
    ``w^T @ dout_wide``) are added to the flat padded image shifted by ``flat(j d)``. The zero
    columns added for the widening contribute nothing wherever they land.
    """
    g = geo.groups
    cout_g = geo.c_out // g
    P = geo.padded
    Lw = geo.out[0] * math.prod(P[1:])
    if geo.out[1:] != P[1:]:
        wide = np.zeros((n, geo.c_out, geo.out[0]) + P[1:], dtype=dtype)
        wide[(slice(None),) * 3 + tuple(slice(0, o) for o in geo.out[1:])] = dout
    else:
        wide = dout
    if g == 1:
        dcols = np.matmul(wt[0], wide.reshape(n, cout_g, Lw))
    else:
        dcols = np.matmul(wt, wide.reshape(n, g, cout_g, Lw))
    dcols = dcols.reshape(n, geo.c_in, math.prod(geo.k), Lw)
    offsets = _tap_offsets(P, geo.k, geo.d)
    size = math.prod(P)
    flat = np.zeros((n, geo.c_in, max(offsets[-1] + Lw, size)), dtype=dtype)
    for t, off in enumerate(offsets):
        flat[:, :, off:off + Lw] += dcols[:, :, t]
    dxp = flat[:, :, :size].reshape((n, geo.c_in) + P)
    return np.ascontiguousarray(_crop(dxp, geo.pads))


def _input_grad_col2im(dout, w, geo, n, dtype):
    """dx = col2im(w^T @ dout), per image and block of output rows (any stride)."""
    g = geo.groups
    L = math.prod(geo.out)
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    wt = np.ascontiguousarray(np.asarray(w, dtype=dtype).reshape(g, cout_g, -1).transpose(0, 2, 1))
    K = geo.c_in * math.prod(geo.k)
    row = math.prod(geo.out[1:])
    rows = max(1, min(geo.out[0], _BLOCK_BYTES // max(1, K * row * np.dtype(dtype).itemsize)))
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
            _col2im_add(dcols.reshape((1, geo.c_in) + geo.k + block_out), dxp[:, :, r0 * s0:], geo.k, geo.s,
                        geo.d, block_out)
        dx[i] = _crop(dxp, geo.pads)[0]
    return dx


def _weight_grad(dout, x, geo, dtype):
    """dw = sum_n dout[n] @ im2col(x)[n]^T (seed 004 eq. 9.11): GEMMs per image and row block, accumulated."""
    n = x.shape[0]
    g = geo.groups
    L = math.prod(geo.out)
    cin_g, cout_g = geo.c_in // g, geo.c_out // g
    if _is_lean(n, geo.c_in, geo, dtype):  # small problem: one copy, one batched GEMM, a sum over images
        cm = _batch_columns(x, geo, dtype).reshape(n, g, cin_g * math.prod(geo.k), L)
        dm = dout.reshape(n, g, cout_g, L)
        dw = np.matmul(dm[0], cm[0].transpose(0, 2, 1)) if n == 1 else np.matmul(dm, cm.transpose(0, 1, 3, 2)).sum(0)
        return dw.reshape((geo.c_out, cin_g) + geo.k)
    dw = np.zeros((g, cout_g, cin_g * math.prod(geo.k)), dtype=dtype)
    part = np.empty_like(dw)
    columns = _Columns(geo, geo.c_in, dtype)
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


def conv_input_grad(dout, x_shape, w, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of :func:`conv` with respect to its input (seed 004 eq. 9.13); ``torch.nn.grad.conv*d_input``.

    Parameters
    ----------
    dout : array_like, shape (N, C_out, *out)
        Upstream gradient ``dL/dout``.
    x_shape : tuple of int
        ``(N, C_in, *spatial)``, the shape of the forward input.
    w : array_like, shape (C_out, C_in / groups, *kernel)
    stride, padding, dilation, groups
        As for :func:`conv`.

    Returns
    -------
    dx : ndarray, shape x_shape
        ``col2im(w^T @ dout)``: each upstream value is scattered back through the taps
        that read it. Positions no window reads (the floor of the size formula) get 0.
    """
    w = as_float_array(w, "w")
    x_shape = tuple(int(v) for v in x_shape)
    if len(x_shape) < 3 or w.ndim != len(x_shape):
        raise ValueError(f"x_shape must be (N, C_in, *spatial) matching w of shape {w.shape}, got {x_shape}")
    geo = _geometry(x_shape, w.shape, stride, padding, dilation, groups)
    dout_arr = as_float_array(dout, "dout")
    dtype = result_dtype(dout_arr, w)
    dout_arr = _check_dout(dout_arr, x_shape[0], geo, dtype)
    return _input_grad(dout_arr, w, geo, x_shape[0], dtype)


def conv_weight_grad(dout, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of :func:`conv` with respect to its weights (seed 004 eq. 9.11); ``torch.nn.grad.conv*d_weight``.

    Parameters
    ----------
    dout : array_like, shape (N, C_out, *out)
    x : array_like, shape (N, C_in, *spatial)
    w_shape : tuple of int
        ``(C_out, C_in / groups, *kernel)``.

    Returns
    -------
    dw : ndarray, shape w_shape
        ``dw[l, i, j] = sum_{n, o} dout[n, l, o] xp[n, g C_in/groups + i, o s + j d]``.
    """
    x = as_float_array(x, "x")
    check_rank(x, "x", min_ndim=3, layout="(N, C_in, *spatial)")
    w_shape = tuple(int(v) for v in w_shape)
    if len(w_shape) != x.ndim:
        raise ValueError(f"w_shape must be (C_out, C_in/groups, *kernel) matching x of shape {x.shape}, got {w_shape}")
    geo = _geometry(x.shape, w_shape, stride, padding, dilation, groups)
    dout_arr = as_float_array(dout, "dout")
    dtype = result_dtype(dout_arr, x)
    dout_arr = _check_dout(dout_arr, x.shape[0], geo, dtype)
    return _weight_grad(dout_arr, x.astype(dtype, copy=False), geo, dtype)


def conv_backward(dout, x, w, stride=1, padding=0, dilation=1, groups=1):
    """Backward pass of :func:`conv`: gradients of the loss w.r.t. input, weights and bias.

    Parameters
    ----------
    dout : array_like, shape (N, C_out, *out)
        Upstream gradient ``dL/dout`` (the seed's ``G``).
    x : array_like, shape (N, C_in, *spatial)
        The forward input.
    w : array_like, shape (C_out, C_in / groups, *kernel)
        The forward weights.
    stride, padding, dilation, groups
        Exactly as passed to :func:`conv`.

    Returns
    -------
    dx : ndarray, shape (N, C_in, *spatial)
        Seed 004 eq. 9.13 (0-based, with dilation): a "full" correlation of ``dout`` with the
        flipped kernel, computed as ``col2im(w^T @ dout)``.
    dw : ndarray, shape (C_out, C_in / groups, *kernel)
        Seed 004 eq. 9.11: ``sum_{n, o} dout[n, l, o] * xp[n, c, o s + j d]``, computed as
        ``dout @ im2col(x)^T`` summed over the batch.
    db : ndarray, shape (C_out,)
        ``dout`` summed over the batch and every output position (returned even if the
        forward had no bias).

    All three have the promoted dtype of ``dout``, ``x`` and ``w``; they equal what
    ``torch.autograd`` returns for ``F.conv{1,2,3}d`` with the same arguments.
    """
    x, w = _check_x_w(x, w)
    geo = _geometry(x.shape, w.shape, stride, padding, dilation, groups)
    dout = as_float_array(dout, "dout")
    dtype = result_dtype(dout, x, w)
    dout = _check_dout(dout, x.shape[0], geo, dtype)
    x = x.astype(dtype, copy=False)
    dx = _input_grad(dout, w, geo, x.shape[0], dtype)
    dw = _weight_grad(dout, x, geo, dtype)
    db = dout.sum(axis=(0,) + tuple(range(2, dout.ndim)))
    return dx, dw, db


# --------------------------------------------------------------------------------------------
# Naive twins: loops that read like the formulas (for the book and as a test oracle).
# --------------------------------------------------------------------------------------------

def conv_naive(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Loop version of :func:`conv`: seed 004 eq. 9.7/9.8 written 0-based, term by term.

    ``Z[n, l, o] = b[l] + sum_i sum_j V[n, g*C_in/groups + i, o*s + j*d] * K[l, i, j]``
    where ``V`` is the zero-padded input, ``o`` and ``j`` are D-dimensional indices
    (output position and kernel tap) and ``g`` is the group of output channel ``l``.
    """
    x, w = _check_x_w(x, w)
    geo = _Geometry(x.shape, w.shape, stride, padding, dilation, groups)
    dtype = result_dtype(x, w)  # the bias is cast to it (as torch requires matching dtypes)
    b = _check_bias(b, geo.c_out, dtype)
    V = pad_spatial(x, geo.pads)
    K = w
    s, d = geo.s, geo.d
    cin_g, cout_g = geo.c_in // geo.groups, geo.c_out // geo.groups
    Z = np.zeros((x.shape[0], geo.c_out) + geo.out, dtype=dtype)
    for n in range(x.shape[0]):                          # every image
        for l in range(geo.c_out):                        # every output channel (the seed's l)
            g = l // cout_g                               # its group of input channels
            for o in np.ndindex(*geo.out):                # every output position (the seed's x, y)
                total = 0.0
                for i in range(cin_g):                    # every input channel of the group
                    for j in np.ndindex(*geo.k):          # every kernel tap (the seed's j, k)
                        pos = tuple(o[a] * s[a] + j[a] * d[a] for a in range(geo.ndim))
                        total += V[(n, g * cin_g + i) + pos] * K[(l, i) + j]
                Z[(n, l) + o] = total + (b[l] if b is not None else 0.0)
    return Z


def conv_backward_naive(dout, x, w, stride=1, padding=0, dilation=1, groups=1):
    """Loop version of :func:`conv_backward`: seed 004 eq. 9.11 (dw) and eq. 9.13 (dx), 0-based.

    ``dw[l, i, j] = sum_n sum_o G[n, l, o] * V[n, g*C_in/groups + i, o*s + j*d]``          (eq. 9.11)

    ``H[n, c, a] = sum_{l in group of c} sum_o K[l, c mod C_in/groups, (a - o*s)/d] * G[n, l, o]``
    over the ``o`` for which ``(a - o*s)/d`` is a whole tap index inside the kernel (eq. 9.13
    with dilation); ``H`` lives on the padded grid and the padding is cropped at the end.
    """
    x, w = _check_x_w(x, w)
    geo = _Geometry(x.shape, w.shape, stride, padding, dilation, groups)
    G = as_float_array(dout, "dout")
    dtype = result_dtype(G, x, w)
    G = _check_dout(G, x.shape[0], geo, dtype)
    V = pad_spatial(x, geo.pads)
    K = w
    s, d, k = geo.s, geo.d, geo.k
    cin_g, cout_g = geo.c_in // geo.groups, geo.c_out // geo.groups

    dw = np.zeros(w.shape, dtype=dtype)                  # eq. 9.11
    for l in range(geo.c_out):
        g = l // cout_g
        for i in range(cin_g):
            for j in np.ndindex(*k):
                total = 0.0
                for n in range(x.shape[0]):
                    for o in np.ndindex(*geo.out):
                        pos = tuple(o[a] * s[a] + j[a] * d[a] for a in range(geo.ndim))
                        total += G[(n, l) + o] * V[(n, g * cin_g + i) + pos]
                dw[(l, i) + j] = total

    H = np.zeros(V.shape, dtype=dtype)                   # eq. 9.13 on the padded grid
    for n in range(x.shape[0]):
        for c in range(geo.c_in):
            g, i = divmod(c, cin_g)
            for a in np.ndindex(*geo.padded):            # every (padded) input position
                total = 0.0
                for l in range(g * cout_g, (g + 1) * cout_g):
                    for o in np.ndindex(*geo.out):
                        offset = [a[t] - o[t] * s[t] for t in range(geo.ndim)]   # = j * d
                        if all(off % d[t] == 0 and 0 <= off // d[t] < k[t] for t, off in enumerate(offset)):
                            j = tuple(off // d[t] for t, off in enumerate(offset))
                            total += K[(l, i) + j] * G[(n, l) + o]
                H[(n, c) + a] = total
    dx = np.ascontiguousarray(_crop(H, geo.pads))

    db = np.zeros(geo.c_out, dtype=dtype)
    for l in range(geo.c_out):
        db[l] = G[:, l].sum()
    return dx, dw, db
