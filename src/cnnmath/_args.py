"""Argument checking shared by every operation in :mod:`cnnmath`.

Every public function funnels its inputs through these helpers, so that the
conventions of the course are enforced in exactly one place:

* arrays are converted with :func:`as_float_array`: float32 stays float32,
  float64 stays float64, booleans and integers become float64, anything that is
  not a real number raises ``TypeError`` naming the argument;
* inputs are never mutated (callers receive a read-only view when no copy is
  needed);
* per-dimension hyper-parameters (``stride``, ``dilation``, ``kernel_size``...)
  are accepted as an int or a tuple with one entry per spatial dimension;
* errors name the argument and its value, e.g.
  ``ValueError: stride must be a positive int, got 0``.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

__all__ = [
    "as_float_array",
    "result_dtype",
    "check_rank",
    "int_tuple",
    "resolve_padding",
    "check_groups",
    "check_x_w",
    "check_bias",
    "check_dout",
    "is_int",
]


def is_int(value) -> bool:
    """True for an integer that is not a bool (``numbers.Integral``: Python and NumPy ints)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_float_array(x, name: str, dtype=None) -> np.ndarray:
    """Return ``x`` as a real floating-point NumPy array without mutating it.

    Parameters
    ----------
    x : array_like
        The input. Lists, tuples, scalars and arrays are accepted.
    name : str
        The argument's name, used in error messages.
    dtype : numpy dtype, optional
        Force this floating dtype. By default float16/float32/float64 are kept
        and bool/int/uint arrays become float64.

    Raises
    ------
    TypeError
        If ``x`` is not numeric (strings, objects, complex numbers).
    """
    if type(x) is np.ndarray and dtype is None and x.dtype.kind == "f":  # the usual call: nothing to do
        return x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {arr.dtype} "
            f"(value {_short_repr(x)})"
        )
    target = np.dtype(dtype) if dtype is not None else (arr.dtype if kind == "f" else np.dtype(np.float64))
    if arr.dtype != target:
        arr = arr.astype(target)
    return arr


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """The floating dtype an operation on ``arrays`` returns (NumPy promotion)."""
    if len(arrays) == 2 and arrays[0].dtype is arrays[1].dtype and arrays[0].dtype.kind == "f":
        return arrays[0].dtype  # the usual call: one float dtype (NumPy's dtype singletons)
    dt = np.result_type(*arrays)
    return dt if dt.kind == "f" else np.dtype(np.float64)


def check_rank(x: np.ndarray, name: str, ndim: int | None = None, min_ndim: int | None = None,
               layout: str = "") -> None:
    """Raise ``ValueError`` if ``x.ndim`` is not ``ndim`` (or is below ``min_ndim``).

    ``layout`` describes the expected layout, e.g. ``"(N, C_in, H, W)"``.
    """
    hint = f" {layout}" if layout else ""
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array{hint}, got shape {x.shape} ({x.ndim}-D)")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions{hint}, got shape {x.shape} ({x.ndim}-D)"
        )


def int_tuple(value, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a per-dimension sequence to a tuple of ``ndim`` ints >= ``minimum``.

    >>> int_tuple(2, 3, "stride")
    (2, 2, 2)
    >>> int_tuple((1, 2), 2, "dilation")
    (1, 2)
    """
    word = "positive" if minimum == 1 else ("non-negative" if minimum == 0 else f">= {minimum}")
    if is_int(value):
        values = (int(value),) * ndim
    elif isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        if len(value) != ndim:
            raise ValueError(
                f"{name} must be an int or a tuple of {ndim} ints (one per spatial dimension), got {value!r}"
            )
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{name} must be a {word} int or a tuple of {ndim} ints, got {value!r}")
    for v in values:
        if v < minimum:
            raise ValueError(f"{name} must be a {word} int, got {value!r}")
    return values


def resolve_padding(padding, ndim: int, kernel_size: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Turn every accepted padding form into per-dimension ``(before, after)`` pairs.

    Accepted forms
    --------------
    * ``int`` -- the same zero padding on both sides of every spatial dimension;
    * tuple of ``ndim`` ints -- symmetric padding per dimension;
    * tuple of ``ndim`` ``(before, after)`` pairs -- asymmetric padding;
    * ``"valid"`` -- no padding (output shrinks by ``d(k-1)``);
    * ``"same"`` -- output size equals input size; needs stride 1. The total
      padding ``d(k-1)`` is split as PyTorch does: ``before = total // 2``,
      the odd extra element goes after;
    * ``"full"`` -- ``d(k-1)`` on both sides: every partial overlap counts, the
      output grows by ``d(k-1)``.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        eff = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        if mode == "valid":
            return tuple((0, 0) for _ in range(ndim))
        if mode == "same":
            bad = [s for s in stride if s != 1]
            if bad:
                raise ValueError(
                    f'padding="same" requires stride 1 in every dimension, got stride={tuple(stride)}'
                )
            return tuple((e // 2, e - e // 2) for e in eff)
        if mode == "full":
            return tuple((e, e) for e in eff)
        raise ValueError(f'padding must be an int, a tuple, or one of "valid", "same", "full", got {padding!r}')
    if is_int(padding):
        if padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {padding}")
        return tuple((int(padding), int(padding)) for _ in range(ndim))
    if isinstance(padding, (tuple, list)):
        if len(padding) != ndim:
            raise ValueError(
                f"padding must have one entry per spatial dimension ({ndim}), got {padding!r}"
            )
        pairs = []
        for p in padding:
            if is_int(p):
                pairs.append((int(p), int(p)))
            elif isinstance(p, (tuple, list)) and len(p) == 2 and all(is_int(v) for v in p):
                pairs.append((int(p[0]), int(p[1])))
            else:
                raise TypeError(
                    f"padding entries must be ints or (before, after) pairs of ints, got {padding!r}"
                )
        if any(v < 0 for pair in pairs for v in pair):
            raise ValueError(f"padding must be non-negative, got {padding!r}")
        return tuple(pairs)
    raise TypeError(f'padding must be an int, a tuple, or one of "valid", "same", "full", got {padding!r}')


def check_groups(groups, c_in: int, c_out: int) -> int:
    """Validate ``groups`` against the input and output channel counts."""
    if not is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the input channels C_in={c_in}")
    if c_out % groups:
        raise ValueError(f"groups={groups} must divide the output channels C_out={c_out}")
    return int(groups)


def _short_repr(x, limit: int = 60) -> str:
    r = repr(x)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def check_x_w(x, w, w_layout="(C_out, C_in/groups, *kernel)"):
    """Convert ``x`` (N, C_in, *spatial) and ``w`` (``w_layout``, same rank as ``x``) to float arrays."""
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    if x.ndim < 3:
        check_rank(x, "x", min_ndim=3, layout="(N, C_in, *spatial)")
    if w.ndim != x.ndim:
        check_rank(w, "w", ndim=x.ndim, layout=f"{w_layout} with as many kernel dims as x has spatial dims")
    return x, w


def check_bias(b, c_out, dtype):
    """``b`` as a (C_out,) array of ``dtype``, or None."""
    if b is None:
        return None
    b = as_float_array(b, "b")
    if b.shape != (c_out,):
        raise ValueError(f"b must have shape (C_out,) = ({c_out},), got shape {b.shape}")
    return b.astype(dtype, copy=False)


def check_dout(dout, n, geo, dtype):
    """``dout`` as an array of ``dtype`` with the convolution output's shape (n, C_out, *out) of ``geo``."""
    dout = as_float_array(dout, "dout")
    expected = (n, geo.c_out) + geo.out
    if dout.shape != expected:
        raise ValueError(f"dout must have the output's shape {expected}, got {dout.shape}")
    return dout if dout.dtype == dtype else dout.astype(dtype)
