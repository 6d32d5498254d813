"""cnnmath: the reference library of *Convolution, Derived*.

Every operation of the course is implemented here once, as a fast vectorized
default and a naive loop twin (``*_naive``) that reads like the formula.

Conventions (stated once, used everywhere)
------------------------------------------
* NumPy in, NumPy out. Layout is channels-first: inputs ``(N, C_in, *spatial)``,
  weights ``(C_out, C_in / groups, *kernel)``; transposed-convolution weights
  ``(C_in, C_out / groups, *kernel)``.
* Deep-learning "convolution" is cross-correlation (no kernel flip);
  :func:`convolve` is the true, flipped, commutative convolution.
* Indices are 0-based; dilation counts from 1 as in PyTorch (``d = 1`` is an
  ordinary kernel).
* For the same arguments every function returns what ``torch.nn.functional``'s
  defaults return. float32 stays float32; integers become float64; inputs are
  never mutated.
* Bad arguments raise ``ValueError``/``TypeError`` naming the argument and value.

``cnnmath.symbolic`` (needs SymPy) holds the symbolic builders used by the book.
"""

from .sizes import *  # noqa: F401,F403
from .windows import *  # noqa: F401,F403
from .im2col import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .transpose import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .signal import *  # noqa: F401,F403
from .receptive_fields import *  # noqa: F401,F403
from .local import *  # noqa: F401,F403
from .streaming import *  # noqa: F401,F403
from .efficient import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .accounting import *  # noqa: F401,F403
from .equivariance import *  # noqa: F401,F403
from .invertibility import *  # noqa: F401,F403
from .architectures import *  # noqa: F401,F403

__version__ = "0.1.0"
