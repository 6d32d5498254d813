"""Activations, losses, a dense layer and a minimal sequential network, each with its gradient.

Enough machinery to run seed 003's worked example end to end (4x4 input, 3x3
kernel, ReLU, flatten, one output neuron, MSE, one SGD step) and to train small
networks in the book. Every forward function has a ``*_backward`` twin that
takes the upstream gradient ``dout`` and returns the gradient of the input
(CS231n's layers.py style).

Formulas (seed 003 section I)::

    ReLU       f(z) = max(0, z)                 f'(z) = 1[z > 0]   (0 at z = 0, as PyTorch)
    sigmoid    s(z) = 1 / (1 + e^{-z})          s'(z) = s(z) (1 - s(z))
    softmax    y_i  = e^{z_i} / sum_j e^{z_j}   dz_i  = y_i (dy_i - sum_j dy_j y_j)
    MSE        L    = 1/2 sum_i (yhat_i - t_i)^2      dL/dyhat_i = yhat_i - t_i
    CE         L    = - sum_i t_i log yhat_i          dL/dyhat_i = - t_i / yhat_i
    dense      yhat = w^T p + b  (seed);  here y = x W^T + b with W of shape (N_out, N_in)

Loss conventions (read before comparing with PyTorch)
-----------------------------------------------------
The seed's MSE is ``1/2 sum (yhat - t)^2`` so that its gradient is ``yhat - t``.
``torch.nn.MSELoss()`` is the *mean* without the 1/2 (``reduction="mean"``).
:func:`mse_loss` therefore takes ``reduction`` in ``{"half_sum", "sum", "mean"}``;
the default ``"half_sum"`` is the seed's. The seed's cross-entropy is a *sum*
over classes (and samples); ``torch.nn.CrossEntropyLoss()`` takes logits and
averages over the batch (``reduction="mean"`` here).

Layers and the network
----------------------
:class:`Conv`, :class:`ReLU`, :class:`Sigmoid`, :class:`Softmax`,
:class:`MaxPool`, :class:`AvgPool`, :class:`Flatten` and :class:`Dense` are
layer objects with ``forward(x)`` (caches what ``backward`` needs),
``backward(dout)`` (stores parameter gradients, returns the input gradient),
and the accounting methods ``output_shape``, ``param_count``, ``macs`` used by
:func:`cnnmath.summarize`: the same object both runs and counts itself.
:class:`Sequential` chains them; :func:`sgd_step` applies ``w <- w - lr dw`` to
every trainable parameter. A layer built with ``trainable=False`` still
computes its parameter gradients (so they can be inspected) but is not updated:
this is how seed 003's example keeps its kernel ``K`` fixed.

The package holds :mod:`cnnmath.nn.functional` (activations, dense, flatten),
:mod:`cnnmath.nn.losses`, :mod:`cnnmath.nn.layers` and :mod:`cnnmath.nn.model`
(:class:`Sequential`, :func:`sgd_step`); every name is importable from ``cnnmath.nn``
and from ``cnnmath``.
"""

from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers
from .losses import *  # noqa: F401,F403
from .losses import __all__ as _losses
from .model import *  # noqa: F401,F403
from .model import __all__ as _model

__all__ = _functional + _losses + _layers + _model
