"""Convolution sums, the output-size formula and the gradients, as SymPy expressions.

See :mod:`cnnmath.symbolic`. Window geometry comes from the library's shared core
(``cnnmath._geometry``), so the symbolic output size is the numeric one.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from .._args import int_tuple, is_int
from .._geometry import window_geometry

__all__ = [
    "symbol_array",
    "conv_sum",
    "conv1d_sum",
    "conv2d_sum",
    "conv1d_sum_formula",
    "output_size_symbols",
    "output_size_expr",
    "output_size_value",
    "conv_gradients",
]


# ---------------------------------------------------------------------------------------------
# Symbol arrays and the convolution sum
# ---------------------------------------------------------------------------------------------

def _name(base, idx):
    return f"{base}_{idx[0]}" if len(idx) == 1 else f"{base}_{{{','.join(map(str, idx))}}}"


def symbol_array(base, shape):
    """NumPy object array of real symbols ``base_i`` (1-D) or ``base_{i,j,...}``.

    >>> symbol_array("x", (3,))
    array([x_0, x_1, x_2], dtype=object)
    """
    shape = tuple(shape)
    out = np.empty(shape, dtype=object)
    for idx in itertools.product(*(range(n) for n in shape)):
        out[idx] = sp.Symbol(_name(base, idx), real=True)
    return out


def _to_sympy(a):
    """1-D object arrays become lists, 2-D Matrices, higher ranks sympy Arrays."""
    if a.ndim == 1:
        return list(a)
    if a.ndim == 2:
        return sp.Matrix(a.tolist())
    return sp.Array(a.tolist())


def _resolved(size, kernel, stride, padding, dilation):
    """The shared window geometry (:mod:`cnnmath._geometry`) as the tuple the builders use."""
    size = int_tuple(size, len(size) if isinstance(size, (tuple, list)) else 1, "size")
    geo = window_geometry(size, kernel, stride, padding, dilation, kernel_name="kernel")
    return size, geo.k, geo.s, geo.pads, geo.d, geo.out


def _conv_objects(x, w, s, pads, d, out):
    """y[l, o] = sum_c sum_j xp[c, o s + j d] w[l, c, j] on object arrays (padding = 0 entries).

    ``x`` is ``(C_in, *size)``, ``w`` is ``(C_out, C_in, *kernel)``.
    """
    xp = np.pad(x, [(0, 0)] + list(pads), constant_values=sp.Integer(0))
    c_out, c_in = w.shape[:2]
    y = np.empty((c_out,) + tuple(out), dtype=object)
    for l in range(c_out):
        for o in itertools.product(*(range(n) for n in out)):
            terms = []
            for c in range(c_in):
                for j in itertools.product(*(range(n) for n in w.shape[2:])):
                    v = xp[(c,) + tuple(oi * si + ji * di for oi, si, ji, di in zip(o, s, j, d))]
                    if v != 0:
                        terms.append(v * w[(l, c) + j])
            y[(l,) + o] = sp.Add(*terms)
    return y


def _channels(value, name):
    if value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def conv_sum(size, kernel, stride=1, padding=0, dilation=1, x="x", w="w", in_channels=None, out_channels=None):
    """Symbolic convolution (cross-correlation) of any rank, single- or multi-channel.

    Single-channel (default): ``y[o] = sum_j x_p[o s + j d] w[j]`` (0-based seed 004
    eq. 9.8 with dilation ``d``; ``x_p`` is ``x`` zero-padded). With channels,
    seed 004 eq. 9.7/9.8: ``y[l, o] = sum_c sum_j x_p[c, o s + j d] w[l, c, j]``.

    Parameters
    ----------
    size : int or tuple of int
        Input size per spatial dimension.
    kernel : int or tuple of int
    stride, padding, dilation
        As for :func:`cnnmath.conv` (padding: int, tuple, pairs, "valid"/"same"/"full").
    x, w : str or array of sympy expressions
        Base names of the symbols, or arrays of expressions to use instead.
    in_channels, out_channels : int, optional
        Give either to build the multi-channel sum; both default to 1 then.

    Returns
    -------
    y, x, w : object ndarrays
        Single-channel: shapes ``out``, ``size``, ``kernel``. Multi-channel:
        ``(C_out, *out)``, ``(C_in, *size)``, ``(C_out, C_in, *kernel)``.
        ``out`` is :func:`cnnmath.output_size`.
    """
    size = (size,) if is_int(size) else tuple(size)
    size, k, s, pads, d, out = _resolved(size, kernel, stride, padding, dilation)
    c_in, c_out = _channels(in_channels, "in_channels"), _channels(out_channels, "out_channels")
    multi = c_in is not None or c_out is not None
    c_in, c_out = c_in or 1, c_out or 1
    xshape = (c_in,) + size if multi else size
    wshape = (c_out, c_in) + k if multi else k
    xs = symbol_array(x, xshape) if isinstance(x, str) else np.asarray(x, dtype=object)
    ws = symbol_array(w, wshape) if isinstance(w, str) else np.asarray(w, dtype=object)
    if xs.shape != xshape or ws.shape != wshape:
        raise ValueError(f"x and w must have shapes {xshape} and {wshape}, got {xs.shape} and {ws.shape}")
    if multi:
        return _conv_objects(xs, ws, s, pads, d, out), xs, ws
    y = _conv_objects(xs[None], ws[None, None], s, pads, d, out)
    return y[0], xs, ws


def conv1d_sum(n, k, stride=1, padding=0, dilation=1):
    """Outputs of a 1-D convolution of ``x_0..x_{n-1}`` with ``w_0..w_{k-1}``.

    Returns
    -------
    y : list of sympy expressions
        ``y_o = sum_j x_{o s + j d - p} w_j`` (terms on padding dropped).
    x, w : list of Symbol

    Examples
    --------
    >>> y, x, w = conv1d_sum(4, 2)
    >>> y[0]
    w_0*x_0 + w_1*x_1
    """
    y, x, w = conv_sum((n,), (k,), stride, padding, dilation)
    return list(y), list(x), list(w)


def conv2d_sum(H, W, kh, kw, stride=1, padding=0, dilation=1):
    """Outputs of a 2-D convolution as a Matrix (seed 003's ``S(i, j) = sum_m sum_n X(i+m, j+n) K(m, n)``).

    Returns
    -------
    Y, X, K : sympy Matrix
        ``Y[i, j] = sum_{m, n} X[i s + m d, j s + n d] K[m, n]`` (padding zeros dropped).
    """
    y, x, w = conv_sum((H, W), (kh, kw), stride, padding, dilation)
    return _to_sympy(y), _to_sympy(x), _to_sympy(w)


def conv1d_sum_formula():
    """The general entry as an unevaluated sum: ``y_i = Sum_{j=0}^{k-1} x_{i s + j d} w_j``.

    Returns
    -------
    sympy.Eq
        Built from ``IndexedBase`` objects ``x``, ``w``, ``y`` and integer symbols
        ``i, j, k, s, d``; ``.doit()`` on concrete ``k`` expands it.
    """
    x, w, y = sp.IndexedBase("x"), sp.IndexedBase("w"), sp.IndexedBase("y")
    i, j = sp.symbols("i j", integer=True, nonnegative=True)
    k, s, d = sp.symbols("k s d", integer=True, positive=True)
    return sp.Eq(y[i], sp.Sum(x[i * s + j * d] * w[j], (j, 0, k - 1)))


# ---------------------------------------------------------------------------------------------
# Output size
# ---------------------------------------------------------------------------------------------

def output_size_symbols():
    """The symbols ``n, k, s, p, d`` (input, kernel, stride, padding per side, dilation)."""
    n, k, s, d = sp.symbols("n k s d", integer=True, positive=True)
    p = sp.Symbol("p", integer=True, nonnegative=True)
    return dict(n=n, k=k, s=s, p=p, d=d)


def output_size_expr(seed_form=False):
    """``floor((n + 2p - d (k - 1) - 1) / s) + 1``.

    Parameters
    ----------
    seed_form : bool
        ``True``: the seeds' ``floor((n - k + 2p) / s) + 1`` (seed 003 section III),
        which is the general formula at ``d = 1``.
    """
    S = output_size_symbols()
    n, k, s, p, d = S["n"], S["k"], S["s"], S["p"], S["d"]
    if seed_form:
        return sp.floor((n - k + 2 * p) / s) + 1
    return sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1


def output_size_value(n, k, s=1, p=0, d=1):
    """Substitute numbers into :func:`output_size_expr`; returns a Python int."""
    S = output_size_symbols()
    return int(output_size_expr().subs({S["n"]: n, S["k"]: k, S["s"]: s, S["p"]: p, S["d"]: d}))


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------

def conv_gradients(size, kernel, stride=1, padding=0, dilation=1, in_channels=None, out_channels=None):
    """Derive ``dL/dx`` and ``dL/dw`` of a convolution with ``sympy.diff``.

    The loss is ``L = sum_{l, o} g_{l, o} y_{l, o}`` where ``g`` are symbolic upstream
    gradients (``g = dL/dy``, seed 004's ``G``), so that differentiating ``L``
    gives the gradients for *any* loss. Next to them, built independently, the
    closed forms of seed 004 (0-based, with padding ``p`` and dilation ``d``):

    * eq. 9.11, ``dw[l, c, j] = sum_o g[l, o] x_p[c, o s + j d]``: the correlation
      of the (padded) input with ``g``, the taps of ``g`` spaced by the stride;
    * eq. 9.13, ``dx[c] = sum_l`` of the *full* convolution of ``g[l]``, upsampled
      by ``s`` (``s - 1`` zeros between entries), with the dilated kernel
      ``w[l, c]``, i.e. a full cross-correlation with the **flipped** kernel;
      then cropped to the un-padded input (positions no window reaches get 0).

    Parameters
    ----------
    size, kernel, stride, padding, dilation, in_channels, out_channels
        As for :func:`conv_sum` (1-D: ints; 2-D: pairs ...).

    Returns
    -------
    dict
        ``x, w, g`` (object arrays of symbols), ``y`` (outputs), ``L``,
        ``dx``/``dw`` (from ``diff``), ``dx_formula``/``dw_formula`` (eqs. 9.13/9.11),
        each an object ndarray shaped like ``x``/``w``; and the resolved ``stride``,
        ``padding`` (pairs) and ``dilation`` tuples.
    """
    size = (size,) if is_int(size) else tuple(size)
    size, k, s, pads, d, out = _resolved(size, kernel, stride, padding, dilation)
    y, x, w = conv_sum(size, k, s, pads, d, in_channels=in_channels, out_channels=out_channels)
    multi = in_channels is not None or out_channels is not None
    g = symbol_array("g", y.shape)
    L = sp.Add(*[g[o] * y[o] for o in np.ndindex(*y.shape)])
    dx = np.empty(x.shape, dtype=object)
    for a in np.ndindex(*x.shape):
        dx[a] = sp.expand(sp.diff(L, x[a]))
    dw = np.empty(w.shape, dtype=object)
    for j in np.ndindex(*w.shape):
        dw[j] = sp.expand(sp.diff(L, w[j]))

    # Work with channel axes throughout: X (C_in, *size), Wk (C_out, C_in, *k), G (C_out, *out).
    X, Wk, G = (x, w, g) if multi else (x[None], w[None, None], g[None])
    c_out, c_in = Wk.shape[:2]

    # eq. 9.11: correlation of the padded input with g, g's taps spaced by the stride.
    xp = np.pad(X, [(0, 0)] + list(pads), constant_values=sp.Integer(0))
    dw_formula = np.empty(Wk.shape, dtype=object)
    for l, c in itertools.product(range(c_out), range(c_in)):
        for j in np.ndindex(*k):
            dw_formula[(l, c) + j] = sp.Add(*[
                G[(l,) + o] * xp[(c,) + tuple(oi * si + ji * di for oi, si, ji, di in zip(o, s, j, d))]
                for o in np.ndindex(*out)])

    # eq. 9.13: upsample g by the stride, dilate the kernel, full cross-correlation with the
    # flipped kernel summed over output channels, then crop the padding.
    kd_shape = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d))
    up_shape = tuple((o - 1) * si + 1 for o, si in zip(out, s))
    span = tuple(u + m - 1 for u, m in zip(up_shape, kd_shape))
    dx_formula = np.empty(X.shape, dtype=object)
    crop = tuple(slice(pb, pb + n) for n, (pb, _) in zip(size, pads))
    for c in range(c_in):
        dxp = np.full(tuple(n + pb + pa for n, (pb, pa) in zip(size, pads)), sp.Integer(0), dtype=object)
        for l in range(c_out):
            up = np.full(up_shape, sp.Integer(0), dtype=object)
            up[tuple(slice(None, None, si) for si in s)] = G[l]
            kd = np.full(kd_shape, sp.Integer(0), dtype=object)
            kd[tuple(slice(None, None, di) for di in d)] = Wk[l, c]
            flipped = kd[tuple(slice(None, None, -1) for _ in k)]
            full = np.pad(up, [(m - 1, m - 1) for m in kd_shape], constant_values=sp.Integer(0))
            for a in np.ndindex(*span):
                dxp[a] = dxp[a] + sp.Add(*[full[tuple(ai + ji for ai, ji in zip(a, j))] * flipped[j]
                                           for j in np.ndindex(*kd_shape)])
        dx_formula[c] = dxp[crop]
    if not multi:
        dx_formula, dw_formula = dx_formula[0], dw_formula[0, 0]
    return dict(x=x, w=w, g=g, y=y, L=L, dx=dx, dw=dw, dx_formula=dx_formula, dw_formula=dw_formula,
                stride=s, padding=pads, dilation=d)
