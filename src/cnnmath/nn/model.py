"""The sequential network and the SGD step (seed 003's worked example end to end)."""

from __future__ import annotations

import numpy as np

from .. import accounting as acc
from .._args import as_float_array, check_rank
from .layers import Layer

__all__ = ["Sequential", "sgd_step"]


class Sequential:
    """A chain of layers run in order; ``backward`` runs them in reverse.

    Parameters
    ----------
    layers : sequence of Layer
    rng : numpy.random.Generator or int, optional
        Draws the parameters of layers built without explicit weights (at the
        first ``forward``); default ``numpy.random.default_rng(0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnmath.nn import Conv, Dense, Flatten, ReLU
    >>> net = Sequential([Conv(2, 3), ReLU(), Flatten(), Dense(1)])
    >>> net.forward(np.ones((1, 1, 4, 4))).shape
    (1, 1)
    """

    def __init__(self, layers, rng=None):
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a cnnmath layer object, got {layer!r}")
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
        self._built_for = None

    def build(self, input_shape):
        """Create missing parameters for inputs of ``input_shape`` (no batch) and check the shapes."""
        shape = tuple(input_shape)
        for layer in self.layers:
            layer.build(shape, self.rng)
            shape = tuple(layer.output_shape(shape))
        self._built_for = tuple(input_shape)
        return shape

    def forward(self, x):
        """Run every layer on ``x`` of shape ``(N, *input_shape)``; caches for ``backward``."""
        x = as_float_array(x, "x")
        check_rank(x, "x", min_ndim=2, layout="(N, C, *spatial) or (N, N_in)")
        if self._built_for != x.shape[1:]:
            self.build(x.shape[1:])
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout):
        """Backpropagate the gradient of the loss w.r.t. the output; returns ``dL/dx``.

        Parameter gradients are stored in each layer's ``grads`` (see :meth:`grads`).
        """
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def params(self, trainable_only=False):
        """Parameters by name ``"<layer index>.<weight|bias>"`` (like torch's ``named_parameters``)."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params().items()
                if layer.trainable or not trainable_only}

    def grads(self, trainable_only=False):
        """Gradients from the last :meth:`backward`, keyed like :meth:`params`."""
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()
                if layer.trainable or not trainable_only}

    def summary(self, input_shape, batch_size=1, dtype="float32"):
        """:func:`cnnmath.format_summary` of :func:`cnnmath.summarize` for this network."""
        return acc.format_summary(acc.summarize(input_shape, self.layers, batch_size, dtype))

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"


def sgd_step(model, lr):
    """One step of gradient descent on every trainable parameter: ``w <- w - lr dL/dw``.

    Updates the parameters in place (they are the model's own copies) after
    :meth:`Sequential.backward`. Frozen layers (``trainable=False``) are skipped,
    as seed 003's example leaves its kernel ``K`` unchanged.

    Parameters
    ----------
    model : Sequential
    lr : float
        Learning rate ``alpha`` (seed 003: 0.1); must be positive.

    Returns
    -------
    model
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    for i, layer in enumerate(model.layers):
        if not layer.trainable:
            continue
        params, grads = layer.params(), layer.grads
        for key, p in params.items():
            if key not in grads:
                raise RuntimeError(f"layer {i} has no gradient for {key!r}: call backward() before sgd_step()")
            p -= lr * grads[key]
    return model
