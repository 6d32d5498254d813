"""The geometry of a windowed operation, resolved once: the private core every module shares.

A window geometry holds, per spatial dimension (0-based, dilation counting from 1)::

    k      kernel size                    s    stride
    d      dilation                       pads (before, after) zero padding
    spatial input size n                  out  output size floor((n + pb + pa - d (k - 1) - 1) / s) + 1

and, for a convolution, the channel counts ``c_in``, ``c_out`` and ``groups``.

Every public module (convolution, transposed convolution, im2col, pooling, local and tiled
layers, streaming, accounting, the symbolic builders) resolves its hyper-parameters here, through
the checks of :mod:`cnnmath._args`, so that one argument means one thing everywhere and every bad
value gets the same one-line error. Calls whose hyper-parameters are plain ints (or tuples of
plain ints), the usual course call, are resolved once and remembered: on a course-sized
convolution resolving them costs as much as the arithmetic. Anything else (strings, NumPy ints,
bools, lists...) is resolved, and checked, afresh every time. Geometries are immutable, so a
remembered one can be shared by every caller.
"""

from __future__ import annotations

import functools
import math

from ._args import check_groups, int_tuple, resolve_padding

__all__ = ["padded_output_size", "Geometry", "window_params", "window_geometry", "conv_geometry"]


def padded_output_size(sizes, kernel_size, stride, pads, dilation, what: str = "kernel_size"):
    """Per-dimension output sizes for already-resolved ``(before, after)`` ``pads``.

    Raises ``ValueError`` when the dilated kernel is larger than the padded input.
    """
    out = []
    for n, k, s, (pb, pa), d in zip(sizes, kernel_size, stride, pads, dilation):
        span = d * (k - 1) + 1
        padded = n + pb + pa
        if span > padded:
            raise ValueError(
                f"{what}={tuple(kernel_size)} (dilated extent {span}) is larger than the padded input "
                f"of size {padded} (input {n} + padding {pb}+{pa})"
            )
        out.append((padded - span) // s + 1)
    return tuple(out)



class Geometry:
    """Resolved geometry of one windowed operation (immutable).

    Attributes
    ----------
    ndim : int
        Number of spatial dimensions ``D``.
    k, s, d : tuple of D ints
        Kernel size, stride, dilation.
    pads : tuple of D (before, after) pairs
    spatial, out : tuple of D ints
        Input and output sizes; ``out_i = floor((n_i + pb_i + pa_i - d_i (k_i - 1) - 1) / s_i) + 1``.
    padded : tuple of D ints
        ``n_i + pb_i + pa_i``.
    c_in, c_out, groups : int or None
        Channel counts and groups of a convolution (None for a plain window geometry).
    taps, positions, size : int
        ``prod(k)`` (kernel taps), ``prod(out)`` (output positions), ``prod(spatial)`` (input positions).
    unpadded, unit_stride, identity : bool
        No padding; stride 1 everywhere; a 1x1, stride-1, unpadded window (columns = input).
    interior : tuple of slices
        Where the input sits inside a zero-padded ``(N, C, *padded)`` buffer.
    """

    __slots__ = ("ndim", "k", "s", "d", "pads", "spatial", "out", "padded", "c_in", "c_out", "groups",
                 "unpadded", "unit_stride", "identity", "taps", "positions", "size", "interior")

    def __init__(self, k, s, d, pads, spatial, what="kernel_size", channels=None):
        set_ = object.__setattr__
        set_(self, "ndim", len(k))
        set_(self, "k", tuple(k))
        set_(self, "s", tuple(s))
        set_(self, "d", tuple(d))
        set_(self, "pads", tuple(pads))
        set_(self, "spatial", tuple(int(v) for v in spatial))
        set_(self, "out", padded_output_size(self.spatial, self.k, self.s, self.pads, self.d, what=what))
        set_(self, "padded", tuple(n + pb + pa for n, (pb, pa) in zip(self.spatial, self.pads)))
        c_in, c_out, groups = channels if channels is not None else (None, None, None)
        set_(self, "c_in", c_in)
        set_(self, "c_out", c_out)
        set_(self, "groups", groups)
        set_(self, "unpadded", not any(v for pair in self.pads for v in pair))
        set_(self, "unit_stride", all(v == 1 for v in self.s))
        # A 1x1, stride-1, unpadded window: the columns are the input itself.
        set_(self, "identity", self.unpadded and self.unit_stride and all(v == 1 for v in self.k))
        set_(self, "taps", math.prod(self.k))  # prod(k), the number of kernel taps
        set_(self, "positions", math.prod(self.out))  # prod(out), the number of output positions
        set_(self, "size", math.prod(self.spatial))  # prod(spatial), the number of input positions
        # Index of the input inside a zero-padded (N, C, *padded) buffer.
        set_(self, "interior", (slice(None), slice(None)) + tuple(
            slice(pb, pb + n) for n, (pb, _) in zip(self.spatial, self.pads)))

    def __setattr__(self, name, value):
        raise AttributeError(f"a Geometry is immutable (it may be shared), cannot set {name}")

    def __repr__(self):
        ch = "" if self.c_in is None else f", c_in={self.c_in}, c_out={self.c_out}, groups={self.groups}"
        return (f"Geometry(k={self.k}, s={self.s}, d={self.d}, pads={self.pads}, spatial={self.spatial}, "
                f"out={self.out}{ch})")


def _plain(value) -> bool:
    """True for a plain int or a (nested) tuple of plain ints: safe and cheap to remember."""
    if type(value) is int:
        return True
    return type(value) is tuple and all(_plain(v) for v in value)


def _int_tuple(t) -> bool:
    """True when every entry of the tuple ``t`` is a plain int (bools and NumPy ints are not)."""
    for v in t:
        if type(v) is not int:
            return False
    return True


def _resolve_params(ndim, kernel_size, stride, padding, dilation, kernel_name):
    k = int_tuple(kernel_size, ndim, kernel_name)
    s = int_tuple(stride, ndim, "stride")
    d = int_tuple(dilation, ndim, "dilation")
    return k, s, d, resolve_padding(padding, ndim, k, s, d)


_remembered_params = functools.lru_cache(maxsize=1024)(_resolve_params)


def window_params(ndim, kernel_size, stride=1, padding=0, dilation=1, kernel_name="kernel_size"):
    """``(k, s, d, pads)`` for ``ndim`` spatial dimensions, checked by :mod:`cnnmath._args`.

    For when the input size is not known yet (a stream of slices, a weight-shape check).
    Remembered when every argument is a plain int or tuple of plain ints.
    """
    if _plain(kernel_size) and _plain(stride) and _plain(padding) and _plain(dilation):
        return _remembered_params(ndim, kernel_size, stride, padding, dilation, kernel_name)
    return _resolve_params(ndim, kernel_size, stride, padding, dilation, kernel_name)


def _resolve_window(spatial, kernel_size, stride, padding, dilation, kernel_name):
    k, s, d, pads = _resolve_params(len(spatial), kernel_size, stride, padding, dilation, kernel_name)
    return Geometry(k, s, d, pads, spatial, what=kernel_name)


_remembered_window = functools.lru_cache(maxsize=1024)(_resolve_window)


def window_geometry(spatial, kernel_size, stride=1, padding=0, dilation=1, kernel_name="kernel_size"):
    """:class:`Geometry` of a window of ``kernel_size`` sliding over an input of size ``spatial``.

    Parameters
    ----------
    spatial : tuple of int
        Input size per spatial dimension (no batch or channel axes).
    kernel_size, stride, dilation : int or tuple of ints
    padding : int, tuple, tuple of (before, after) pairs, "valid", "same" or "full"
    kernel_name : str
        The kernel argument's name in error messages.

    Raises
    ------
    ValueError, TypeError
        As :mod:`cnnmath._args` does, and when the dilated kernel is larger than the padded input.
    """
    spatial = tuple(spatial)
    if _plain(spatial) and _plain(kernel_size) and _plain(stride) and _plain(padding) and _plain(dilation):
        return _remembered_window(spatial, kernel_size, stride, padding, dilation, kernel_name)
    return _resolve_window(spatial, kernel_size, stride, padding, dilation, kernel_name)


def _resolve_conv(x_shape, w_shape, stride, padding, dilation, groups):
    ndim = len(x_shape) - 2
    c_in, c_out = int(x_shape[1]), int(w_shape[0])
    k, s, d, pads = _resolve_params(ndim, tuple(int(v) for v in w_shape[2:]), stride, padding, dilation,
                                    "kernel_size")
    g = check_groups(groups, c_in, c_out)
    if w_shape[1] * g != c_in:
        raise ValueError(
            f"channels mismatch: x has C_in={c_in} channels but w of shape {tuple(w_shape)} "
            f"with groups={g} expects C_in = w.shape[1] * groups = {w_shape[1] * g}"
        )
    return Geometry(k, s, d, pads, x_shape[2:], channels=(c_in, c_out, g))


_remembered_conv = functools.lru_cache(maxsize=1024)(_resolve_conv)


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """:class:`Geometry` of a convolution of an ``x_shape`` input (N, C_in, *spatial) with
    ``w_shape`` weights (C_out, C_in / groups, *kernel), channels checked against ``groups``."""
    if (type(stride) is int and type(padding) is int and type(dilation) is int and type(groups) is int
            and type(x_shape) is tuple and type(w_shape) is tuple):
        # The course call: plain ints, shapes of arrays (tuples of ints). Checked without a generator.
        if _int_tuple(x_shape) and _int_tuple(w_shape):
            return _remembered_conv(x_shape, w_shape, stride, padding, dilation, groups)
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if (_plain(x_shape) and _plain(w_shape) and _plain(stride) and _plain(padding) and _plain(dilation)
            and type(groups) is int):
        return _remembered_conv(x_shape, w_shape, stride, padding, dilation, groups)
    return _resolve_conv(x_shape, w_shape, stride, padding, dilation, groups)
