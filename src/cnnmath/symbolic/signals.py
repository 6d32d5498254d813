"""Discrete and continuous convolution, receptive fields and parameter counts, as SymPy expressions.

See :mod:`cnnmath.symbolic`.
"""

from __future__ import annotations

import sympy as sp

from .._args import is_int
from .conv_sums import symbol_array

__all__ = [
    "discrete_convolution",
    "discrete_cross_correlation",
    "commutator",
    "cross_correlation_counterexample",
    "box",
    "triangle",
    "continuous_convolution",
    "box_convolution",
    "receptive_field_expr",
    "receptive_field_recurrence",
    "conv_params_expr",
    "depthwise_separable_params_expr",
    "separable_cost_ratio_expr",
    "conv2plus1d_params_expr",
    "conv2plus1d_matching_channels_expr",
]


# ---------------------------------------------------------------------------------------------
# Signals: discrete and continuous convolution
# ---------------------------------------------------------------------------------------------

def discrete_convolution(f, g):
    """True convolution of finite sequences, ``(f * g)(t) = sum_tau f(tau) g(t - tau)`` (seed 004).

    ``f`` and ``g`` are supported on ``0..len-1``; the result is the list of values
    for ``t = 0 .. len(f) + len(g) - 2`` (numpy's "full" mode).
    """
    f, g = list(f), list(g)
    return [sp.Add(*[f[tau] * g[t - tau] for tau in range(len(f)) if 0 <= t - tau < len(g)])
            for t in range(len(f) + len(g) - 1)]


def discrete_cross_correlation(f, g):
    """Cross-correlation ``(f ⋆ g)(t) = sum_tau f(t + tau) g(tau)`` (seed 004), as a dict ``t -> value``.

    Nonzero only for ``t = -(len(g) - 1) .. len(f) - 1``; the dict has exactly those keys.
    """
    f, g = list(f), list(g)
    return {t: sp.Add(*[f[t + tau] * g[tau] for tau in range(len(g)) if 0 <= t + tau < len(f)])
            for t in range(-(len(g) - 1), len(f))}


def commutator(n, m, op="convolution"):
    """``f op g - g op f`` for symbolic sequences ``f_0..f_{n-1}``, ``g_0..g_{m-1}``, expanded.

    All zeros for ``op="convolution"`` (commutative); not for ``"cross_correlation"``,
    where ``(g ⋆ f)(t) = (f ⋆ g)(-t)``.

    Returns
    -------
    dict
        ``t -> expanded difference``.
    """
    f = list(symbol_array("f", (n,)))
    g = list(symbol_array("g", (m,)))
    if op == "convolution":
        a, b = discrete_convolution(f, g), discrete_convolution(g, f)
        return {t: sp.expand(u - v) for t, (u, v) in enumerate(zip(a, b))}
    if op == "cross_correlation":
        a, b = discrete_cross_correlation(f, g), discrete_cross_correlation(g, f)
        keys = sorted(set(a) | set(b))
        return {t: sp.expand(a.get(t, 0) - b.get(t, 0)) for t in keys}
    raise ValueError(f'op must be "convolution" or "cross_correlation", got {op!r}')


def cross_correlation_counterexample():
    """Concrete sequences with ``f ⋆ g != g ⋆ f`` (and ``f * g == g * f``).

    Returns
    -------
    dict
        ``f = [1, 2]``, ``g = [1, 0]`` and the four results: ``f ⋆ g = {-1: 0, 0: 1, 1: 2}``
        but ``g ⋆ f = {-1: 2, 0: 1, 1: 0}`` (mirror images), while both
        convolutions are ``[1, 2, 0]``.
    """
    f = [sp.Integer(1), sp.Integer(2)]
    g = [sp.Integer(1), sp.Integer(0)]
    return dict(f=f, g=g, f_corr_g=discrete_cross_correlation(f, g), g_corr_f=discrete_cross_correlation(g, f),
                f_conv_g=discrete_convolution(f, g), g_conv_f=discrete_convolution(g, f))


def box(u, a=0, b=1):
    """Indicator of ``[a, b]`` as a ``Piecewise`` in ``u`` (height 1)."""
    return sp.Piecewise((1, (u >= a) & (u <= b)), (0, True))


def triangle(t):
    """The triangle ``max(0, 1 - |t - 1|)`` on ``[0, 2]`` as a ``Piecewise``: the answer to box * box."""
    return sp.Piecewise((0, t < 0), (t, t <= 1), (2 - t, t <= 2), (0, True))


def continuous_convolution(f, g, t=None, tau=None):
    """``(f * g)(t) = integral f(tau) g(t - tau) dtau`` over the real line (seed 002).

    Parameters
    ----------
    f, g : callables
        Map a sympy expression to a sympy expression (e.g. :func:`box`).
    t, tau : Symbol, optional
        Real symbols to use (created if omitted).

    Returns
    -------
    sympy expression in ``t``
    """
    t = sp.Symbol("t", real=True) if t is None else t
    tau = sp.Symbol("tau", real=True) if tau is None else tau
    return sp.integrate(f(tau) * g(t - tau), (tau, -sp.oo, sp.oo))


def box_convolution():
    """Convolve the unit box with itself by integration; the result is :func:`triangle`.

    Returns
    -------
    result, t : sympy expression, Symbol
        SymPy's answer (in ``Min``/``Max`` form) and its variable; it equals
        ``triangle(t)`` for every real ``t``.
    """
    t = sp.Symbol("t", real=True)
    return sp.simplify(continuous_convolution(box, box, t)), t


# ---------------------------------------------------------------------------------------------
# Receptive field and counts
# ---------------------------------------------------------------------------------------------

def _layer_symbols(L):
    if not is_int(L) or L < 1:
        raise ValueError(f"L must be a positive int (number of layers), got {L!r}")
    k = sp.symbols(f"k_1:{L + 1}", integer=True, positive=True)
    s = sp.symbols(f"s_1:{L + 1}", integer=True, positive=True)
    d = sp.symbols(f"d_1:{L + 1}", integer=True, positive=True)
    return k, s, d


def receptive_field_expr(L, dilation=False):
    """Closed form ``RF = 1 + sum_l d_l (k_l - 1) prod_{i<l} s_i`` (seed 001 section 4).

    Returns
    -------
    expr, (k, s, d)
        The expression and the tuples of layer symbols ``k_1..k_L``, ``s_1..s_L``,
        ``d_1..d_L`` (the ``d`` are absent from ``expr`` unless ``dilation=True``).
    """
    k, s, d = _layer_symbols(L)
    terms = [(d[l] if dilation else 1) * (k[l] - 1) * sp.Mul(*s[:l]) for l in range(L)]
    return 1 + sp.Add(*terms), (k, s, d)


def receptive_field_recurrence(L, dilation=False):
    """The recursion ``r_0 = 1``, ``j_1 = 1``, ``r_l = r_{l-1} + d_l (k_l - 1) j_l``, ``j_{l+1} = j_l s_l``.

    Returns
    -------
    rs, js, (k, s, d)
        Lists ``[r_1..r_L]`` and ``[j_1..j_L]`` of expressions and the layer symbols.
    """
    k, s, d = _layer_symbols(L)
    r, j = sp.Integer(1), sp.Integer(1)
    rs, js = [], []
    for l in range(L):
        r = r + (d[l] if dilation else 1) * (k[l] - 1) * j
        rs.append(r)
        js.append(j)
        j = j * s[l]
    return rs, js, (k, s, d)


def _count_symbols():
    c_in, c_out, k, t, m = sp.symbols("C_in C_out k t M", integer=True, positive=True)
    return c_in, c_out, k, t, m


def conv_params_expr(bias=True):
    """``k^2 C_in C_out + C_out`` (seed 001); ``(k^2 C_in + 1) C_out`` is the same (seed 003).

    Returns
    -------
    expr, (C_in, C_out, k)
    """
    c_in, c_out, k, _, _ = _count_symbols()
    return k ** 2 * c_in * c_out + (c_out if bias else 0), (c_in, c_out, k)


def depthwise_separable_params_expr(bias=False):
    """``C_in k^2 + C_in C_out`` (seed 001 with ``C = C_in``, depth multiplier 1); biases add ``C_in + C_out``.

    Returns
    -------
    expr, (C_in, C_out, k)
    """
    c_in, c_out, k, _, _ = _count_symbols()
    return c_in * k ** 2 + c_in * c_out + ((c_in + c_out) if bias else 0), (c_in, c_out, k)


def separable_cost_ratio_expr():
    """``(C_in k^2 + C_in C_out) / (k^2 C_in C_out)`` simplified: ``1/C_out + 1/k^2``.

    Returns
    -------
    ratio, (C_in, C_out, k)
        ``ratio`` is the expanded quotient (``C_in`` cancels).
    """
    sep, syms = depthwise_separable_params_expr(bias=False)
    std, _ = conv_params_expr(bias=False)
    return sp.expand(sp.cancel(sep / std)), syms


def conv2plus1d_params_expr(bias=False):
    """Weights of a 3D ``t x k x k`` convolution and of the (2+1)D block with ``M`` channels.

    Returns
    -------
    p3d, p21, (C_in, C_out, k, t, M)
        ``t k^2 C_in C_out`` and ``M k^2 C_in + t M C_out`` (plus biases ``C_out`` /
        ``M + C_out`` if ``bias``).
    """
    c_in, c_out, k, t, m = _count_symbols()
    p3 = t * k ** 2 * c_in * c_out + (c_out if bias else 0)
    p21 = m * k ** 2 * c_in + t * m * c_out + ((m + c_out) if bias else 0)
    return p3, p21, (c_in, c_out, k, t, m)


def conv2plus1d_matching_channels_expr():
    """Solve ``P_(2+1)D(M) = P_3D`` (no biases) for ``M``; the library takes its floor.

    Returns
    -------
    expr, (C_in, C_out, k, t)
        ``t k^2 C_in C_out / (k^2 C_in + t C_out)``.
    """
    p3, p21, (c_in, c_out, k, t, m) = conv2plus1d_params_expr(bias=False)
    (sol,) = sp.solve(sp.Eq(p21, p3), m)
    return sp.factor(sol), (c_in, c_out, k, t)
