"""Streaming 3-D convolution: a volume arrives as depth slices, output slices leave one by one.

Seed 000 (section 5) recommends generators (``yield``) for volumes too large for memory
(CT/MRI stacks, long videos). A 3-D convolution only ever needs the input slices under
its kernel, so it can be computed while the volume streams past::

    out[n, l, o_d, o_h, o_w] = b[l] + sum_{i, j_d, j_h, j_w}
        Xp[n, i, o_d s_d + j_d d_d, o_h s_h + j_h d_h, o_w s_w + j_w d_w] w[l, i, j_d, j_h, j_w]

(the 3-D case of seed 004 eq. 9.8, 0-based, with padding and dilation). Output depth
``o_d`` reads padded input slices ``o_d s_d + j_d d_d`` for ``j_d < k_d``, all inside a
window of ``span = d_d (k_d - 1) + 1`` consecutive slices. :func:`conv3d_stream` keeps
exactly that window in a ``collections.deque``: each new slice is appended, the output
slices it completes are computed and yielded, and slices no later output needs are
dropped *before* the next one is pulled. The result is identical to
``cnnmath.conv(np.stack(slices, axis=2), w, b, stride, padding, dilation)``, and the
output depth ``floor((D + p_before + p_after - span) / s_d) + 1`` emerges as the stream
ends (the depth ``D`` need not be known in advance).

Memory bound (what ``tests/test_streaming.py`` measures with :mod:`tracemalloc`)
------------------------------------------------------------------------------
With ``S`` the bytes of one (in-plane padded) input slice and ``S_out`` of one output
slice, the peak is about

    (span + 1) S + 3 S_out

``span`` slices in the window (``span - 1`` kept + the one being pulled, plus its padded
copy while padding in-plane), and three output slices: the accumulator, one
per-tap product, and the previous output still referenced by the consumer. The in-plane
work is one ``einsum`` per kernel tap ``(j_d, j_h, j_w)`` directly on a strided view of
the slice (no im2col matrix, which would cost ``k_h k_w`` slices); that is the price of
the bound: this is a memory-lean reference, not a fast path.
"""

from __future__ import annotations

import os
from collections import deque

import numpy as np

from ._args import as_float_array, check_rank, result_dtype
from ._columns import pad_spatial
from ._geometry import window_geometry, window_params

__all__ = ["conv3d_stream", "volume_slices"]

_ZERO = None  # stands for a depth-padding slice of zeros (never materialised)


def conv3d_stream(slices, w, b=None, stride=1, padding=0, dilation=1):
    """3-D convolution of a volume given as an iterable of depth slices; yields output depth slices.

    Parameters
    ----------
    slices : iterable of array_like, each shape (N, C_in, H, W)
        The depth slices ``x[:, :, 0], x[:, :, 1], ...`` of a volume ``x`` of shape
        ``(N, C_in, D, H, W)``, in order; typically a generator (see
        :func:`volume_slices`). It is consumed lazily: the first output is yielded after
        ``span - p_before`` slices have been pulled.
    w : array_like, shape (C_out, C_in, k_d, k_h, k_w)
    b : array_like, shape (C_out,), optional
    stride, dilation : int or tuple of 3 ints (depth, height, width), default 1
    padding : int, tuple of 3 ints, 3 (before, after) pairs, "valid", "same" or "full"
        Zero padding as in :func:`cnnmath.conv`; depth padding is fed as zero slices.
        (No ``groups``: every output channel reads every input channel.)

    Yields
    ------
    ndarray, shape (N, C_out, H_out, W_out)
        Output depth slices ``out[:, :, o_d]`` for ``o_d = 0, 1, ...``, with
        ``H_out = floor((H + p_before + p_after - d_h (k_h - 1) - 1) / s_h) + 1`` (same
        for ``W``); ``np.stack(list(...), axis=2)`` equals ``cnnmath.conv`` on the volume.

    Raises
    ------
    ValueError
        At the call for bad ``w``/``b``/hyper-parameters; during iteration for a slice
        of the wrong rank, shape or channel count, or a volume shallower than the kernel.
    """
    w = as_float_array(w, "w")
    check_rank(w, "w", ndim=5, layout="(C_out, C_in, k_d, k_h, k_w)")
    k = w.shape[2:]
    k, s, d, pads = window_params(3, k, stride, padding, dilation)
    if b is not None:
        b = as_float_array(b, "b")
        if b.shape != (w.shape[0],):
            raise ValueError(f"b must have shape (C_out,) = ({w.shape[0]},), got {b.shape}")
    if isinstance(slices, np.ndarray):
        raise TypeError(
            f"slices must be an iterable of (N, C_in, H, W) depth slices, got an array of shape {slices.shape}; "
            "use volume_slices(volume) to stream an (N, C_in, D, H, W) array"
        )
    try:
        iterator = iter(slices)
    except TypeError:
        raise TypeError(f"slices must be an iterable of (N, C_in, H, W) depth slices, got {type(slices).__name__}") \
            from None
    return _stream(iterator, w, b, k, s, d, pads)


def _stream(iterator, w, b, k, s, d, pads):
    kd = k[0]
    sd, dd = s[0], d[0]
    span = dd * (kd - 1) + 1
    (pd_before, pd_after), plane_pads = pads[0], pads[1:]

    first = None
    window: deque = deque()  # padded slices window_start, window_start + 1, ...
    window_start = 0
    p = -1  # padded depth index of the newest slice
    next_out = 0
    geometry = {}

    def prepare(raw, i):
        nonlocal first
        a = as_float_array(raw, f"slices[{i}]")
        check_rank(a, f"slices[{i}]", ndim=4, layout="(N, C_in, H, W)")
        if first is None:
            if a.shape[1] != w.shape[1]:
                raise ValueError(
                    f"input channels mismatch: slices[0] has {a.shape[1]} channels but w expects "
                    f"C_in={w.shape[1]} (w.shape={w.shape})"
                )
            first = a.shape
            dtype = result_dtype(a, w) if b is None else result_dtype(a, w, b)
            out_hw = window_geometry(a.shape[2:], k[1:], s[1:], plane_pads, d[1:]).out
            geometry.update(dtype=dtype, out_hw=out_hw,
                            # wcol[c, jd, jh, jw] = w[:, c, jd, jh, jw] shaped (1, C_out, 1, 1)
                            wcol=np.moveaxis(w.astype(dtype), 0, -1).reshape(w.shape[1:] + (1, w.shape[0], 1, 1)),
                            bias=None if b is None else b.astype(dtype).reshape(1, -1, 1, 1))
        elif a.shape != first:
            raise ValueError(f"slices[{i}] has shape {a.shape}, but slices[0] had {first}: all depth slices "
                             "must have the same shape (N, C_in, H, W)")
        a = a.astype(geometry["dtype"], copy=False)
        # always a private copy, so a producer may reuse its buffer for the next slice
        padded = pad_spatial(a, plane_pads, 0.0)  # (N, C_in, H + p_h, W + p_w)
        return padded.copy() if padded is a else padded

    def compute(o):
        g = geometry
        n = first[0]
        ho, wo = g["out_hw"]
        acc = np.empty((n, w.shape[0], ho, wo), dtype=g["dtype"])
        if g["bias"] is None:
            acc.fill(0)
        else:
            acc[...] = g["bias"]
        tmp = np.empty_like(acc)
        for jd in range(kd):
            sl = window[o * sd + jd * dd - window_start]
            if sl is _ZERO:
                continue  # a depth-padding slice contributes nothing
            for jh in range(k[1]):
                for jw in range(k[2]):
                    view = sl[:, :,
                              jh * d[1]: jh * d[1] + s[1] * (ho - 1) + 1: s[1],
                              jw * d[2]: jw * d[2] + s[2] * (wo - 1) + 1: s[2]]
                    for c in range(view.shape[1]):  # multiply-accumulate: no copy of the view
                        np.multiply(view[:, c:c + 1], g["wcol"][c, jd, jh, jw], out=tmp)
                        acc += tmp
        return acc

    def padded_stream():
        count = 0
        for raw in iterator:  # (not enumerate: its cached result tuple would keep the last raw slice alive)
            sl = prepare(raw, count)
            del raw  # keep only the private padded copy alive
            if count == 0:
                for _ in range(pd_before):
                    yield _ZERO
            count += 1
            yield sl
            del sl
        if count == 0:
            raise ValueError("slices is empty: a volume needs at least one depth slice")
        for _ in range(pd_after):
            yield _ZERO

    for sl in padded_stream():
        p += 1
        if p < next_out * sd:  # skipped by a depth stride larger than the kernel span
            window_start = p + 1
            del sl
            continue
        window.append(sl)
        del sl
        while next_out * sd + span - 1 <= p:
            out = compute(next_out)
            next_out += 1
            # drop what no later output reads, before yielding (and before pulling more)
            while window and window_start < next_out * sd:
                window.popleft()
                window_start += 1
            yield out
            del out
    if next_out == 0:
        depth = p + 1 - pd_before - pd_after
        raise ValueError(
            f"kernel depth k_d={kd} (dilated extent {span}) is larger than the padded input depth {p + 1} "
            f"(input {depth} + padding {pd_before}+{pd_after})"
        )


def volume_slices(source, axis=2, copy=True):
    """Yield the depth slices of a volume held in memory or in a ``.npy`` file on disk.

    Parameters
    ----------
    source : ndarray or str or os.PathLike
        A volume of shape ``(N, C, D, H, W)`` (or ``(D, H, W)``, treated as ``N = C = 1``),
        or the path of a ``.npy`` file holding one. Files are opened with
        ``np.load(path, mmap_mode="r")``: nothing is read until a slice is requested, so a
        volume larger than RAM can be streamed.
    axis : int, default 2
        The depth axis of a 5-D volume (``0`` for a 3-D one is implied).
    copy : bool, default True
        Yield an in-memory copy of each slice (reads it from disk); ``False`` yields views
        (memory-mapped for files).

    Yields
    ------
    ndarray, shape (N, C, H, W)
        ``volume[:, :, i]`` for ``i = 0 .. D - 1``.
    """
    if isinstance(source, (str, os.PathLike)):
        vol = np.load(source, mmap_mode="r")
    else:
        vol = np.asarray(source)
    if vol.ndim == 3:
        vol = vol[None, None]
        axis = 2
    if vol.ndim != 5:
        raise ValueError(f"source must be a 5-D (N, C, D, H, W) or 3-D (D, H, W) volume, got shape {vol.shape}")
    if not isinstance(axis, (int, np.integer)) or not -5 <= axis < 5:
        raise ValueError(f"axis must be an int in [-5, 5), got {axis!r}")
    vol = np.moveaxis(vol, axis, 2)
    for i in range(vol.shape[2]):
        sl = vol[:, :, i]
        yield np.array(sl) if copy else sl
