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

The fast functions (:func:`conv`, :func:`conv_backward`, :func:`conv_input_grad`,
:func:`conv_weight_grad`) are im2col + GEMM (see :mod:`cnnmath.im2col` for the column layout):

* forward: ``out[n] = W @ cols(x[n])`` with ``W = w.reshape(C_out, -1)`` (per group);
* dw:      ``dw = sum_n dout[n] @ cols(x[n])^T``;
* dx:      ``col2im(W^T @ dout[n])``, whose loop runs over the ``prod(k)`` kernel offsets only, or,
  at stride 1, a "full" convolution of ``dout`` with the flipped, channel-transposed kernel.

Small problems (e.g. course-sized calls) take lean whole-batch paths, where per-call overhead
matters more than memory; large ones go one image and one block of output rows at a time, so
that peak extra memory is one block of columns; large 3-D stride-1 ones sum the taps as shifted
products on each image's flat padded grid (no strided copy or scatter). The paths, and the rule
for which runs when, live in one private module, ``cnnmath._conv_paths``. Plain-int
hyper-parameters resolve to a remembered geometry (``cnnmath._geometry``).

The naive twins (:func:`conv_naive`, :func:`conv_backward_naive`) are plain loops over
the formulas above; the tests assert both agree with each other and with PyTorch.
"""

from __future__ import annotations

import numpy as np

from . import _conv_paths as paths
from ._args import as_float_array, check_bias, check_dout, check_rank, check_x_w, result_dtype
from ._columns import crop, pad_spatial
from ._geometry import conv_geometry

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


_LAYOUTS = {1: "(N, C_in, L)", 2: "(N, C_in, H, W)", 3: "(N, C_in, D, H, W)"}
_W_LAYOUTS = {1: "(C_out, C_in/groups, kL)", 2: "(C_out, C_in/groups, kH, kW)",
              3: "(C_out, C_in/groups, kD, kH, kW)"}


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
    x, w = check_x_w(x, w)
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    dtype = result_dtype(x, w)  # the bias is cast to it (as torch requires matching dtypes)
    b = check_bias(b, geo.c_out, dtype)
    out = paths.forward(x.astype(dtype, copy=False), w, geo, dtype)
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
    if type(x_shape) is not tuple or not all(type(v) is int for v in x_shape):
        x_shape = tuple(int(v) for v in x_shape)
    if len(x_shape) < 3 or w.ndim != len(x_shape):
        raise ValueError(f"x_shape must be (N, C_in, *spatial) matching w of shape {w.shape}, got {x_shape}")
    geo = conv_geometry(x_shape, w.shape, stride, padding, dilation, groups)
    dout_arr = as_float_array(dout, "dout")
    dtype = result_dtype(dout_arr, w)
    dout_arr = check_dout(dout_arr, x_shape[0], geo, dtype)
    return paths.input_grad(dout_arr, w, geo, x_shape[0], dtype)


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
    geo = conv_geometry(x.shape, w_shape, stride, padding, dilation, groups)
    dout_arr = as_float_array(dout, "dout")
    dtype = result_dtype(dout_arr, x)
    dout_arr = check_dout(dout_arr, x.shape[0], geo, dtype)
    return paths.weight_grad(dout_arr, x.astype(dtype, copy=False), geo, dtype)


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
    x, w = check_x_w(x, w)
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    dout = as_float_array(dout, "dout")
    dtype = result_dtype(dout, x, w)
    dout = check_dout(dout, x.shape[0], geo, dtype)
    x = x.astype(dtype, copy=False)
    dx = paths.input_grad(dout, w, geo, x.shape[0], dtype)
    dw = paths.weight_grad(dout, x, geo, dtype)
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
    x, w = check_x_w(x, w)
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    dtype = result_dtype(x, w)  # the bias is cast to it (as torch requires matching dtypes)
    b = check_bias(b, geo.c_out, dtype)
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
    x, w = check_x_w(x, w)
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    G = as_float_array(dout, "dout")
    dtype = result_dtype(G, x, w)
    G = check_dout(G, x.shape[0], geo, dtype)
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
    dx = np.ascontiguousarray(crop(H, geo.pads))

    db = np.zeros(geo.c_out, dtype=dtype)
    for l in range(geo.c_out):
        db[l] = G[:, l].sum()
    return dx, dw, db
