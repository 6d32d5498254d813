"""Layer objects: ``forward(x)`` caches what ``backward(dout)`` needs; parameter gradients are stored.

Each layer also counts itself (``output_shape``, ``param_count``, ``macs``) for
:func:`cnnmath.summarize`. See :mod:`cnnmath.nn`.
"""

from __future__ import annotations

from math import prod

import numpy as np

from .. import accounting as acc
from .._args import as_float_array, check_rank, is_int, int_tuple
from .functional import (dense, dense_backward, flatten, flatten_backward, relu, relu_backward, sigmoid,
                         sigmoid_backward, softmax, softmax_backward)

__all__ = ["Layer", "Conv", "ReLU", "Sigmoid", "Softmax", "MaxPool", "AvgPool", "Flatten", "Dense"]


# ---------------------------------------------------------------------------------------------
# Layer objects
# ---------------------------------------------------------------------------------------------

class Layer:
    """Base class: a stateless layer with no parameters.

    Subclasses implement ``forward``/``backward`` and may override the accounting
    methods. Shapes given to ``output_shape``/``param_count``/``macs`` are
    channels-first without the batch dimension.
    """

    trainable = False
    name = None

    def __init__(self):
        self._cache = None
        self.grads = {}

    # running -----------------------------------------------------------------------------
    def build(self, in_shape, rng):
        """Create parameters for an input of ``in_shape`` (no batch). Default: nothing."""

    def forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout):  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self):
        """Learnable arrays by name (empty for parameter-free layers)."""
        return {}

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    # accounting --------------------------------------------------------------------------
    def output_shape(self, in_shape):
        return tuple(in_shape)

    def param_count(self, in_shape):
        return 0

    def macs(self, in_shape):
        return 0

    def hyperparameters(self):
        return ""

    def __repr__(self):
        hp = self.hyperparameters()
        return f"{type(self).__name__}({hp})"


def _param(value, name, shape=None):
    arr = np.array(as_float_array(value, name), copy=True)  # never alias the caller's array
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    return arr


def _fan_in_uniform(rng, shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


class _WeightedLayer(Layer):
    """A layer with a ``weight`` and an optional bias ``b`` (Conv, Dense)."""

    def _init_parameters(self, bias, trainable, name, b):
        """Set the flags Conv and Dense share; ``weight`` and ``b`` start unset (the caller or ``build`` fills them)."""
        self.bias = bool(bias)
        self.trainable = bool(trainable)
        self.name = name
        self.weight = None
        self.b = None
        if b is not None and not self.bias:
            raise ValueError("b was given but bias=False")

    def _store_grads(self, dw, db):
        self.grads = {"weight": dw}
        if self.bias:
            self.grads["bias"] = db

    def params(self):
        if self.weight is None:
            return {}
        out = {"weight": self.weight}
        if self.bias:
            out["bias"] = self.b
        return out


class Conv(_WeightedLayer):
    """Convolution layer wrapping :func:`cnnmath.conv` / :func:`cnnmath.conv_backward`.

    Parameters
    ----------
    out_channels : int
        ``C_out``.
    kernel_size : int or tuple of int
    stride, padding, dilation, groups
        As for :func:`cnnmath.conv`.
    bias : bool
        Whether the layer has a bias ``(C_out,)``.
    weight : array_like, shape (C_out, C_in / groups, *kernel), optional
        Initial kernel; copied. If omitted, drawn uniformly from
        ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` when the network is built.
    b : array_like, shape (C_out,), optional
        Initial bias (requires ``bias=True``); zeros if omitted and ``weight`` is given.
    trainable : bool
        ``False`` freezes the layer: gradients are still computed (``grads``) but
        :func:`sgd_step` leaves the parameters unchanged.

    Notes
    -----
    ``forward`` caches its input; ``backward`` returns ``dx`` and stores
    ``grads["weight"]`` (seed 004 eq. 9.11) and ``grads["bias"]``.
    """

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 *, weight=None, b=None, trainable=True, name=None):
        super().__init__()
        if not is_int(out_channels) or out_channels < 1:
            raise ValueError(f"out_channels must be a positive int, got {out_channels!r}")
        if not (is_int(kernel_size) or isinstance(kernel_size, (tuple, list))):
            raise TypeError(f"kernel_size must be an int or a tuple of ints, got {kernel_size!r}")
        self.out_channels = int(out_channels)
        self.kernel_size = kernel_size
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self._init_parameters(bias, trainable, name, b)
        if weight is not None:
            w = _param(weight, "weight")
            if w.ndim < 3 or w.shape[0] != self.out_channels:
                raise ValueError(f"weight must have shape (C_out={self.out_channels}, C_in/groups, *kernel), "
                                 f"got {w.shape}")
            k = int_tuple(kernel_size, w.ndim - 2, "kernel_size")
            if w.shape[2:] != k:
                raise ValueError(f"weight's kernel {w.shape[2:]} does not match kernel_size={kernel_size!r}")
            self.weight = w
            if self.bias:
                self.b = (_param(b, "b", (self.out_channels,)) if b is not None
                          else np.zeros(self.out_channels, dtype=w.dtype))

    @classmethod
    def from_weights(cls, weight, b=None, stride=1, padding=0, dilation=1, groups=1, trainable=True, name=None):
        """Build a layer around a given kernel ``(C_out, C_in/groups, *k)`` (and bias, if any)."""
        w = as_float_array(weight, "weight")
        check_rank(w, "weight", min_ndim=3, layout="(C_out, C_in/groups, *kernel)")
        return cls(w.shape[0], tuple(w.shape[2:]), stride, padding, dilation, groups, bias=b is not None,
                   weight=w, b=b, trainable=trainable, name=name)

    def _k(self, ndim):
        return int_tuple(self.kernel_size, ndim, "kernel_size")

    def build(self, in_shape, rng):
        c_in = in_shape[0]
        if c_in % self.groups:
            raise ValueError(f"groups={self.groups} must divide the input channels C_in={c_in}")
        shape = (self.out_channels, c_in // self.groups) + self._k(len(in_shape) - 1)
        if self.weight is None:
            fan_in = prod(shape[1:])
            self.weight = _fan_in_uniform(rng, shape, fan_in)
            if self.bias:
                self.b = _fan_in_uniform(rng, (self.out_channels,), fan_in)
        elif self.weight.shape != shape:
            raise ValueError(f"Conv weight of shape {self.weight.shape} does not fit an input with "
                             f"{c_in} channels (expected weight shape {shape})")

    def forward(self, x):
        from ..conv import conv

        self._cache = x
        return conv(x, self.weight, self.b, self.stride, self.padding, self.dilation, self.groups)

    def backward(self, dout):
        from ..conv import conv_backward

        x = self._cached()
        dx, dw, db = conv_backward(dout, x, self.weight, self.stride, self.padding, self.dilation, self.groups)
        self._store_grads(dw, db)
        return dx

    def output_shape(self, in_shape):
        return acc.conv_output_shape(in_shape, self.out_channels, self.kernel_size, self.stride,
                                      self.padding, self.dilation)

    def param_count(self, in_shape):
        return acc.conv_params(in_shape[0], self.out_channels, self.kernel_size, self.groups, self.bias,
                                ndim=len(in_shape) - 1)

    def macs(self, in_shape):
        return acc.conv_macs(in_shape, self.out_channels, self.kernel_size, self.stride, self.padding,
                              self.dilation, self.groups)

    def hyperparameters(self):
        k = self.kernel_size
        parts = [f"F={k if is_int(k) else 'x'.join(map(str, k))}", f"S={self.stride}", f"P={self.padding}",
                 f"K={self.out_channels}"]
        if self.dilation != 1:
            parts.append(f"D={self.dilation}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("no bias")
        if not self.trainable:
            parts.append("frozen")
        return ", ".join(parts)


class _Activation(Layer):
    """A parameter-free layer wrapping a function ``_fn(x, *args)`` and its backward
    ``_fn_backward(dout, x, *args)``; ``_args()`` supplies the extra arguments."""

    _fn = None
    _fn_backward = None

    def _args(self):
        return ()

    def forward(self, x):
        self._cache = x
        return self._fn(x, *self._args())

    def backward(self, dout):
        return self._fn_backward(dout, self._cached(), *self._args())


class ReLU(_Activation):
    """Element-wise :func:`relu` as a layer."""

    _fn, _fn_backward = staticmethod(relu), staticmethod(relu_backward)


class Sigmoid(_Activation):
    """Element-wise :func:`sigmoid` as a layer."""

    _fn, _fn_backward = staticmethod(sigmoid), staticmethod(sigmoid_backward)


class Softmax(_Activation):
    """:func:`softmax` over the feature axis (axis 1 of ``(N, C, ...)``)."""

    _fn, _fn_backward = staticmethod(softmax), staticmethod(softmax_backward)

    def __init__(self, axis=1):
        super().__init__()
        self.axis = axis

    def _args(self):
        return (self.axis,)

    def hyperparameters(self):
        return f"axis={self.axis}"


class _Pool(Layer):
    _op = None

    def __init__(self, kernel_size, stride=None, padding=0, *, name=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.name = name

    def _ops(self):
        from .. import pooling

        return getattr(pooling, self._op), getattr(pooling, self._op + "_backward")

    def forward(self, x):
        self._cache = x
        return self._ops()[0](x, self.kernel_size, self.stride, self.padding)

    def backward(self, dout):
        return self._ops()[1](dout, self._cached(), self.kernel_size, self.stride, self.padding)

    def output_shape(self, in_shape):
        return acc.pool_output_shape(in_shape, self.kernel_size, self.stride, self.padding)

    def hyperparameters(self):
        k = self.kernel_size
        s = k if self.stride is None else self.stride
        return f"F={k}, S={s}, P={self.padding}"


class MaxPool(_Pool):
    """Max pooling layer (:func:`cnnmath.max_pool`); stride defaults to ``kernel_size``."""

    _op = "max_pool"


class AvgPool(_Pool):
    """Average pooling layer (:func:`cnnmath.avg_pool`); padded zeros count in the average."""

    _op = "avg_pool"


class Flatten(Layer):
    """:func:`flatten` as a layer: ``(N, C, *spatial) -> (N, C * prod(spatial))``."""

    def forward(self, x):
        x = as_float_array(x, "x")
        self._cache = x.shape
        return flatten(x)

    def backward(self, dout):
        return flatten_backward(dout, self._cached())

    def output_shape(self, in_shape):
        return (prod(in_shape),)


class Dense(_WeightedLayer):
    """Fully connected layer (:func:`dense`) with ``N_out`` outputs; ``N_in`` is inferred.

    Parameters
    ----------
    out_features : int
    bias : bool
    weight : array_like, shape (N_out, N_in), optional
        Initial weights (copied), rows per output as in ``torch.nn.Linear``.
    b : array_like, shape (N_out,), optional
    trainable : bool
        See :class:`Conv`.
    """

    def __init__(self, out_features, bias=True, *, weight=None, b=None, trainable=True, name=None):
        super().__init__()
        if not is_int(out_features) or out_features < 1:
            raise ValueError(f"out_features must be a positive int, got {out_features!r}")
        self.out_features = int(out_features)
        self._init_parameters(bias, trainable, name, b)
        if weight is not None:
            w = _param(weight, "weight")
            if w.ndim != 2 or w.shape[0] != self.out_features:
                raise ValueError(f"weight must have shape (N_out={self.out_features}, N_in), got {w.shape}")
            self.weight = w
            if self.bias:
                self.b = (_param(b, "b", (self.out_features,)) if b is not None
                          else np.zeros(self.out_features, dtype=w.dtype))

    @classmethod
    def from_weights(cls, weight, b=None, trainable=True, name=None):
        """Build a layer around given weights ``(N_out, N_in)`` (and bias ``(N_out,)``, if any)."""
        w = as_float_array(weight, "weight")
        check_rank(w, "weight", ndim=2, layout="(N_out, N_in)")
        return cls(w.shape[0], bias=b is not None, weight=w, b=b, trainable=trainable, name=name)

    def build(self, in_shape, rng):
        if len(in_shape) != 1:
            raise ValueError(f"Dense expects a flat input (N_in,), got shape {tuple(in_shape)}; add a Flatten")
        n_in = in_shape[0]
        if self.weight is None:
            self.weight = _fan_in_uniform(rng, (self.out_features, n_in), n_in)
            if self.bias:
                self.b = _fan_in_uniform(rng, (self.out_features,), n_in)
        elif self.weight.shape[1] != n_in:
            raise ValueError(f"Dense weight of shape {self.weight.shape} does not fit {n_in} input features")

    def forward(self, x):
        self._cache = as_float_array(x, "x")
        return dense(self._cache, self.weight, self.b)

    def backward(self, dout):
        dx, dw, db = dense_backward(dout, self._cached(), self.weight)
        self._store_grads(dw, db)
        return dx

    def output_shape(self, in_shape):
        if len(in_shape) != 1:
            raise ValueError(f"Dense expects a flat input (N_in,), got shape {tuple(in_shape)}; add a Flatten")
        return (self.out_features,)

    def param_count(self, in_shape):
        self.output_shape(in_shape)
        return acc.dense_params(in_shape[0], self.out_features, self.bias)

    def macs(self, in_shape):
        self.output_shape(in_shape)
        return acc.dense_macs(in_shape[0], self.out_features)

    def hyperparameters(self):
        extra = "" if self.bias else ", no bias"
        return f"{self.out_features} output neurons{extra}" + ("" if self.trainable else ", frozen")
