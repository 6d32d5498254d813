"""Layer accounting: output shapes, parameter counts, multiply-adds and activation memory.

Every count in the course comes from the functions of this module, and the layer
objects of :mod:`cnnmath.nn` (``Conv``, ``MaxPool``, ``Dense``...) call them to
count themselves, so a network is described once and can be both run
(:class:`cnnmath.Sequential`) and summarized (:func:`summarize`).

Shapes are channels-first and exclude the batch dimension: a feature map is
``(C, *spatial)`` (``(C, H, W)`` for images), a vector is ``(N_in,)``.

Formulas (seed 003 section III, seed 001 sections 2 and 8), for a convolution
with ``C_in`` input channels, ``C_out`` filters, kernel ``k_1 x ... x k_D``,
``groups`` groups and output spatial sizes ``o_1 ... o_D``::

    output size   o_i   = floor((n_i + p_before + p_after - d_i (k_i - 1) - 1) / s_i) + 1
                          (:func:`cnnmath.output_size`; seed: floor((W - F + 2P) / S) + 1)
    parameters    P     = C_out (C_in / groups) k_1...k_D + C_out      (bias)
                          seed 003: (F F C_in + 1) C_out;  seed 001: k^2 C_in C_out + C_out
    multiply-adds MACs  = (o_1...o_D) C_out (C_in / groups) k_1...k_D
                          seed 003: O(H_out W_out C_out C_in F^2)

and for a dense layer ``P = (N_in + 1) N_out`` and ``MACs = N_in N_out``.

Conventions of the counts
-------------------------
* A multiply-add (MAC) is one ``a * b + c``; FLOPs are usually quoted as
  ``2 x MACs``. Bias additions are not counted as MACs.
* By default the MACs of a padded convolution include the taps that land on
  padding zeros, because that is the work the dense GEMM (im2col) actually does
  (and what common counters report). ``count_padding=False`` gives the number
  of products with real input elements instead.
* Pooling, flattening and element-wise activations have no parameters and no
  multiply-adds (they compare, add or copy); their only cost here is memory.
* Activation memory is ``batch x prod(output shape) x itemsize`` bytes: what a
  layer's output occupies, and what backpropagation must keep (seed 003
  "Memory Requirements").
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from ._args import check_groups, int_tuple, is_int
from ._geometry import window_geometry
from .sizes import output_size

__all__ = [
    "conv_output_shape",
    "conv_params",
    "conv_macs",
    "pool_output_shape",
    "dense_params",
    "dense_macs",
    "activation_bytes",
    "LayerSummary",
    "summarize",
    "format_summary",
]


def _shape(in_shape, name="in_shape", min_ndim=1):
    if is_int(in_shape):
        in_shape = (in_shape,)
    if not isinstance(in_shape, (tuple, list)) or not all(is_int(v) for v in in_shape):
        raise TypeError(f"{name} must be a tuple of ints (channels-first, no batch), got {in_shape!r}")
    if len(in_shape) < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} entries, got {in_shape!r}")
    if any(v < 1 for v in in_shape):
        raise ValueError(f"{name} must contain positive sizes, got {in_shape!r}")
    return tuple(int(v) for v in in_shape)


def _positive(value, name):
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _feature_map(in_shape, name="in_shape"):
    shape = _shape(in_shape, name, min_ndim=2)
    return shape[0], shape[1:]


def conv_output_shape(in_shape, out_channels, kernel_size, stride=1, padding=0, dilation=1):
    """Output shape ``(C_out, o_1, ..., o_D)`` of a convolution.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C_in, n_1, ..., n_D)``, channels-first, without the batch dimension.
    out_channels : int
        ``C_out``, the number of filters.
    kernel_size, stride, dilation : int or tuple of int
    padding : int, tuple, (before, after) pairs, or "valid" / "same" / "full"

    Returns
    -------
    tuple of int
        ``(C_out, o_1, ..., o_D)`` with ``o_i`` from :func:`cnnmath.output_size`.

    Examples
    --------
    >>> conv_output_shape((3, 16, 16), 8, 3, padding=1)   # seed 003, Conv1
    (8, 16, 16)
    """
    _, spatial = _feature_map(in_shape)
    c_out = _positive(out_channels, "out_channels")
    out = output_size(spatial, kernel_size, stride, padding, dilation)
    return (c_out,) + tuple(out)


def conv_params(in_channels, out_channels, kernel_size, groups=1, bias=True, ndim=None):
    """Number of learnable parameters of a convolution.

    ``C_out (C_in / groups) k_1...k_D + (C_out if bias)``; with ``groups=1`` and a
    square kernel this is seed 003's ``(F F C_in + 1) C_out`` and seed 001's
    ``k^2 C_in C_out + C_out``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of int
        An int means a cube kernel of ``ndim`` spatial dimensions.
    groups : int
        Must divide both channel counts.
    bias : bool
    ndim : int, optional
        Number of spatial dimensions when ``kernel_size`` is an int (default 2).

    Examples
    --------
    >>> conv_params(3, 8, 3), conv_params(8, 16, 3)          # seed 003
    (224, 1168)
    """
    c_in = _positive(in_channels, "in_channels")
    c_out = _positive(out_channels, "out_channels")
    k = _kernel(kernel_size, ndim)
    g = check_groups(groups, c_in, c_out)
    return c_out * (c_in // g) * prod(k) + (c_out if bias else 0)


def _kernel(kernel_size, ndim=None):
    if ndim is None:
        ndim = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 2
    return int_tuple(kernel_size, ndim, "kernel_size")




def conv_macs(in_shape, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
              count_padding=True):
    """Multiply-adds of one convolution on one input (batch 1).

    Parameters
    ----------
    in_shape : tuple of int
        ``(C_in, n_1, ..., n_D)``.
    out_channels, kernel_size, stride, padding, dilation, groups
        As for :func:`cnnmath.conv`.
    count_padding : bool
        ``True`` (default): ``(o_1...o_D) C_out (C_in/groups) k_1...k_D``, every tap
        of every window, the dense work of im2col + GEMM. ``False``: only the
        products with real (non-padding) input elements.

    Returns
    -------
    int

    Examples
    --------
    >>> conv_macs((3, 16, 16), 8, 3, padding=1)   # 16*16 outputs x 8 filters x 27 taps
    55296
    """
    c_in, spatial = _feature_map(in_shape)
    c_out = _positive(out_channels, "out_channels")
    g = check_groups(groups, c_in, c_out)   # before the sizes, as cnnmath.conv reports it
    geo = window_geometry(spatial, kernel_size, stride, padding, dilation)
    k, s, d, pads, out = geo.k, geo.s, geo.d, geo.pads, geo.out
    per_filter = (c_in // g)
    if count_padding:
        return prod(out) * c_out * per_filter * prod(k)
    taps = 1
    # Along each dimension count the (output, tap) pairs that land inside the input;
    # the window is a product of intervals, so the totals multiply.
    for n, ki, si, (pb, _), di, oi in zip(spatial, k, s, pads, d, out):
        taps *= sum(1 for o in range(oi) for j in range(ki) if 0 <= o * si + j * di - pb < n)
    return c_out * per_filter * taps


def pool_output_shape(in_shape, kernel_size, stride=None, padding=0, dilation=1):
    """Output shape ``(C, o_1, ..., o_D)`` of max or average pooling (channels unchanged).

    ``stride`` defaults to ``kernel_size`` as in ``torch.nn.functional``.

    >>> pool_output_shape((8, 16, 16), 2)   # seed 003, Pool1
    (8, 8, 8)
    """
    c, spatial = _feature_map(in_shape)
    stride = kernel_size if stride is None else stride
    return (c,) + tuple(output_size(spatial, kernel_size, stride, padding, dilation))


def dense_params(in_features, out_features, bias=True):
    """``N_out N_in + N_out``: seed 003's ``(N_in + 1) N_out``.

    >>> dense_params(144, 10)   # seed 003, Dense
    1450
    """
    n_in = _positive(in_features, "in_features")
    n_out = _positive(out_features, "out_features")
    return n_out * n_in + (n_out if bias else 0)


def dense_macs(in_features, out_features):
    """``N_in N_out`` multiply-adds of a dense layer on one input vector."""
    return _positive(in_features, "in_features") * _positive(out_features, "out_features")


def activation_bytes(shape, dtype="float32", batch_size=1):
    """Bytes taken by an activation of ``shape`` (no batch) for ``batch_size`` inputs.

    >>> activation_bytes((8, 16, 16))   # float32
    8192
    """
    shape = _shape(shape, "shape")
    batch_size = _positive(batch_size, "batch_size")
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        raise TypeError(f"dtype must be a NumPy dtype, got {dtype!r}") from None
    return batch_size * prod(shape) * itemsize


@dataclass
class LayerSummary:
    """One row of :func:`summarize`: a layer and what it costs.

    Attributes
    ----------
    index : int
        Row number; 0 is the input.
    name : str
        ``"Input"``, ``"Conv1"``, ``"MaxPool1"``... (kind + running number per kind).
    kind : str
        Layer class name.
    hyperparameters : str
        E.g. ``"F=3, S=1, P=1, K=8"`` (seed 003's notation).
    input_shape, output_shape : tuple of int
        Channels-first, no batch dimension.
    params, macs, activation_bytes : int
    trainable : bool
    """

    index: int
    name: str
    kind: str
    hyperparameters: str
    input_shape: tuple
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int
    trainable: bool = True


def summarize(input_shape, layers, batch_size=1, dtype="float32"):
    """Trace ``input_shape`` through ``layers`` and count each layer.

    Parameters
    ----------
    input_shape : tuple of int
        Channels-first, without the batch dimension, e.g. ``(3, 16, 16)``.
    layers : sequence of layer objects, or a :class:`cnnmath.Sequential`
        Objects of :mod:`cnnmath.nn` (``Conv``, ``MaxPool``, ``AvgPool``,
        ``Flatten``, ``Dense``, ``ReLU``, ``Sigmoid``, ``Softmax``); any object with
        ``output_shape(in_shape)``, ``param_count(in_shape)``, ``macs(in_shape)``
        and ``hyperparameters()`` works.
    batch_size : int
        Multiplies the activation memory (parameters and per-input MACs do not change).
    dtype : numpy dtype
        Element type of the activations (default float32, 4 bytes).

    Returns
    -------
    list of LayerSummary
        Row 0 is the input; then one row per layer.

    Examples
    --------
    Seed 003's 16x16x3 network:

    >>> from cnnmath import Conv, MaxPool, Flatten, Dense
    >>> rows = summarize((3, 16, 16), [Conv(8, 3, padding=1), MaxPool(2), Conv(16, 3),
    ...                                MaxPool(2), Flatten(), Dense(10)])
    >>> [r.output_shape for r in rows][1:], sum(r.params for r in rows)
    ([(8, 16, 16), (8, 8, 8), (16, 6, 6), (16, 3, 3), (144,), (10,)], 2842)
    """
    layers = list(getattr(layers, "layers", layers))
    shape = _shape(input_shape, "input_shape")
    rows = [LayerSummary(0, "Input", "Input", "", shape, shape, 0, 0,
                         activation_bytes(shape, dtype, batch_size), False)]
    counters = {}
    for i, layer in enumerate(layers, start=1):
        for attr in ("output_shape", "param_count", "macs"):
            if not callable(getattr(layer, attr, None)):
                raise TypeError(f"layers[{i - 1}] has no {attr}() method, got {layer!r}")
        kind = type(layer).__name__
        counters[kind] = counters.get(kind, 0) + 1
        name = getattr(layer, "name", None) or f"{kind}{counters[kind]}"
        try:
            out = tuple(layer.output_shape(shape))
        except ValueError as exc:
            raise ValueError(f"layer {i} ({name}) cannot take input shape {shape}: {exc}") from None
        hyper = layer.hyperparameters() if callable(getattr(layer, "hyperparameters", None)) else ""
        rows.append(LayerSummary(i, name, kind, hyper, shape, out, int(layer.param_count(shape)),
                                 int(layer.macs(shape)), activation_bytes(out, dtype, batch_size),
                                 bool(getattr(layer, "trainable", True))))
        shape = out
    return rows


def _fmt_shape(shape, layout):
    chw = " x ".join(str(v) for v in shape)
    if len(shape) == 1:
        return chw
    hwc = " x ".join(str(v) for v in shape[1:] + shape[:1])
    if layout == "CHW":
        return chw
    if layout == "HWC":
        return hwc
    return f"{chw} ({hwc})"


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def format_summary(rows, layout="both"):
    """Render :func:`summarize` rows as a plain-text table with totals (like Keras' summary).

    Parameters
    ----------
    rows : list of LayerSummary
    layout : {"both", "CHW", "HWC"}
        How to print feature-map shapes: channels-first ``C x H x W`` (the
        library's layout), channels-last ``H x W x C`` (the seeds' notation) or
        both, e.g. ``8 x 16 x 16 (16 x 16 x 8)``.

    Returns
    -------
    str
        One line per layer, then the totals of parameters (trainable and
        frozen), multiply-adds and activation memory (including the input).
    """
    if layout not in ("both", "CHW", "HWC"):
        raise ValueError(f'layout must be "both", "CHW" or "HWC", got {layout!r}')
    rows = list(rows)
    header = ("#", "Layer", "Hyperparameters", "Output shape", "Params", "MACs", "Activations")
    body = [(str(r.index), r.name, r.hyperparameters, _fmt_shape(r.output_shape, layout),
             f"{r.params:,}", f"{r.macs:,}", _fmt_bytes(r.activation_bytes)) for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    right = {0, 4, 5, 6}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(header))
    total = sum(r.params for r in rows)
    trainable = sum(r.params for r in rows if r.trainable)
    out = [line(header), rule.replace("-", "=")] + [line(b) for b in body] + [rule.replace("-", "=")]
    out.append(f"Total parameters:      {total:,}")
    out.append(f"  trainable:           {trainable:,}")
    out.append(f"  frozen:              {total - trainable:,}")
    out.append(f"Total multiply-adds:   {sum(r.macs for r in rows):,} per input")
    out.append(f"Activation memory:     {_fmt_bytes(sum(r.activation_bytes for r in rows))}"
               " (all rows, input included)")
    return "\n".join(out)
