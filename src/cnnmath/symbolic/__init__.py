"""SymPy builders: the formulas of the course as symbolic expressions (needs SymPy).

The chapters derive with these and the tests check the numeric library against
them (substitute numbers, compare with :func:`cnnmath.conv`,
:func:`cnnmath.conv_backward`, :func:`cnnmath.output_size`...). Import it
explicitly: ``from cnnmath import symbolic`` (it is not imported by ``cnnmath``,
whose only dependency is NumPy).

Contents
--------
Convolution sums
    :func:`conv1d_sum`, :func:`conv2d_sum`, :func:`conv_sum` (any rank): every output
    entry as an explicit sum of products of symbols ``x_i`` and ``w_j`` (seed 003
    section I.1, seed 004 eqs. 9.7/9.8, 0-based, with padding and dilation);
    :func:`conv1d_sum_formula`: the general entry as an unevaluated ``Sum``.
Output size
    :func:`output_size_expr` (the floor formula in ``n, k, s, p, d``) and
    :func:`output_size_value` (substitute numbers).
Gradients
    :func:`conv_gradients`: ``dL/dx`` and ``dL/dw`` by ``sympy.diff`` of
    ``L = sum_o g_o y_o`` on a small symbolic instance, next to the closed forms of
    seed 004 eq. 9.11 (correlation of the input with ``g``) and eq. 9.13 (full
    convolution of the stride-upsampled ``g`` with the flipped kernel).
Signals
    :func:`discrete_convolution`, :func:`discrete_cross_correlation` (seed 004
    section 1), :func:`commutator` (``f * g - g * f``),
    :func:`cross_correlation_counterexample`; continuous convolution by
    integration: :func:`box`, :func:`continuous_convolution`,
    :func:`box_convolution` (box * box = triangle).
Receptive field and counts
    :func:`receptive_field_expr`, :func:`receptive_field_recurrence`,
    :func:`conv_params_expr`, :func:`depthwise_separable_params_expr`,
    :func:`separable_cost_ratio_expr`, :func:`conv2plus1d_params_expr`,
    :func:`conv2plus1d_matching_channels_expr`.

Symbols are real; 1-D entries are named ``x_0, x_1, ...``; multi-dimensional ones
``x_{0,1}`` (which renders as :math:`x_{0,1}`). All indices are 0-based.

The package holds :mod:`cnnmath.symbolic.conv_sums` (convolution sums, output size,
gradients) and :mod:`cnnmath.symbolic.signals` (signals, receptive fields, counts);
every name is importable from ``cnnmath.symbolic``.
"""

from .conv_sums import *  # noqa: F401,F403
from .conv_sums import __all__ as _conv_sums
from .signals import *  # noqa: F401,F403
from .signals import __all__ as _signals

__all__ = _conv_sums + _signals
