"""Output-size arithmetic for convolution, pooling and transposed convolution.

The one formula behind every shape in the course (0-based, PyTorch's
conventions, dilation counting from 1 so that ``d = 1`` is an ordinary kernel)::

    n_out = floor((n + p_before + p_after - d (k - 1) - 1) / s) + 1

With symmetric padding ``p`` on each side and ``d = 1`` it is the seeds'
``floor((n - k + 2p) / s) + 1`` (seed 003 section III, seed 000 section 1).
The transposed convolution inverts it::

    n_out = (n - 1) s - (p_before + p_after) + d (k - 1) + output_padding + 1
"""

from __future__ import annotations

from ._args import int_tuple, is_int
from ._geometry import padded_output_size, window_geometry, window_params

__all__ = ["output_size", "transposed_output_size", "padded_output_size"]


def _scalar_or_tuple(n, name):
    if is_int(n):
        return (int(n),), True
    if isinstance(n, (tuple, list)) and n and all(is_int(v) for v in n):
        return tuple(int(v) for v in n), False
    raise TypeError(f"{name} must be an int or a tuple of ints, got {n!r}")


def output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    """Spatial output size of a convolution or pooling window.

    Parameters
    ----------
    n : int or tuple of int
        Input size per spatial dimension (``H``, or ``(H, W)``...).
    kernel_size, stride, dilation : int or tuple of int
        One value, or one per spatial dimension. ``stride`` and ``dilation`` >= 1.
    padding : int, tuple, tuple of (before, after) pairs, or "valid" / "same" / "full"
        Zero padding, as accepted by :func:`cnnmath.conv`.

    Returns
    -------
    int or tuple of int
        ``floor((n + p_before + p_after - d (k - 1) - 1) / s) + 1`` per dimension;
        an int when ``n`` is an int.

    Examples
    --------
    The seeds' 16x16x3 network (seed 003): conv 3x3 pad 1 keeps 16, a 2x2/2 pool halves it.

    >>> output_size(16, 3, padding=1), output_size(16, 2, stride=2), output_size(8, 3)
    (16, 8, 6)
    """
    sizes, scalar = _scalar_or_tuple(n, "n")
    for v in sizes:
        if v < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
    out = window_geometry(sizes, kernel_size, stride, padding, dilation).out
    return out[0] if scalar else out


def transposed_output_size(n, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Spatial output size of a transposed convolution (the adjoint of :func:`output_size`).

    Returns ``(n - 1) s - 2 p + d (k - 1) + output_padding + 1`` per dimension
    (``p`` may also be a ``(before, after)`` pair, then ``2p`` is their sum).

    ``output_padding`` resolves the ambiguity of the forward formula's floor: all
    inputs of sizes ``n_out ... n_out + s - 1`` map to the same ``n``; it must be
    smaller than ``stride`` or ``dilation`` (as in PyTorch).

    >>> transposed_output_size(8, 3, stride=2, padding=1, output_padding=1)
    16
    """
    sizes, scalar = _scalar_or_tuple(n, "n")
    ndim = len(sizes)
    if isinstance(padding, str):
        raise ValueError(f"padding of a transposed convolution must be ints, got {padding!r}")
    k, s, d, pads = window_params(ndim, kernel_size, stride, padding, dilation)
    op = int_tuple(output_padding, ndim, "output_padding", minimum=0)
    for o, si, di in zip(op, s, d):
        if o >= si and o >= di:
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got output_padding={output_padding!r} "
                f"with stride={stride!r}, dilation={dilation!r}"
            )
    out = []
    for ni, ki, si, (pb, pa), di, oi in zip(sizes, k, s, pads, d, op):
        size = (ni - 1) * si - pb - pa + di * (ki - 1) + oi + 1
        if size < 1:
            raise ValueError(
                f"transposed convolution output would be empty (size {size}) for n={n!r}, "
                f"kernel_size={kernel_size!r}, stride={stride!r}, padding={padding!r}"
            )
        out.append(size)
    return out[0] if scalar else tuple(out)
