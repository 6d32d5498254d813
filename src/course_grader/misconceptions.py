"""Feedback that teaches: name the likely misconception behind a wrong answer.

When a test fails, the grader looks at the calls that test made to the student's functions
(the arguments the trusted test sent and the plain data that came back from the sandbox)
and recomputes each wrong result with ``cnnmath`` *variants* of the operation: the kernel
flipped (true convolution instead of cross-correlation), the padding left out or doubled,
the stride ignored in the backward pass, the weights read as ``(C_in, C_out, ...)``,
channels-last data, an output size off by one; and, for derived formulas and the activations
notebook, a ceiling for a floor, dilation ignored, an unflipped gradient kernel, a sigmoid
derivative at the wrong point (:mod:`course_grader.formula_misconceptions`). The first variant that reproduces the
student's output names the misconception, in one sentence (:data:`SENTENCES`).

Everything here runs in the trusted process, on plain data only: arrays, numbers, tuples.
Nothing the student wrote is executed. A variant is tried only if it differs from the
correct result, so a correct answer is never "diagnosed".

Public entry points: :func:`diagnose` (one call) and :func:`diagnose_calls` (a failed test's calls).
"""
import inspect
import math

import numpy as np

from .formula_misconceptions import FORMULA_DIAGNOSERS, FORMULA_SENTENCES
from .invariance_misconceptions import INVARIANCE_DIAGNOSERS, INVARIANCE_SENTENCES
from .efficient_misconceptions import EFFICIENT_DIAGNOSERS, EFFICIENT_SENTENCES

__all__ = ["SENTENCES", "diagnose", "diagnose_calls", "sentence"]

SENTENCES = {
    "flipped_kernel": (
        "Your result matches the kernel flipped in both spatial axes (a true convolution), but deep "
        "learning's \"convolution\" is cross-correlation: use w[..., i, j] as it is, without flipping it."),
    "output_size_off_by_one": (
        "Your output size is off by one: the number of window positions is "
        "floor((n + 2p - d(k - 1) - 1) / s) + 1, so check the final + 1 and where the last window starts."),
    "padding_forgotten": (
        "Your result matches the computation with the padding left out: a convolution or pooling adds `padding` "
        "zeros on each side of every spatial axis, and a backward or transposed convolution crops them off again."),
    "padding_doubled": (
        "Your result matches padding applied twice: `padding` is the number of zeros on EACH side, so it "
        "enters the size as n + 2p once, not 2p per side."),
    "stride_ignored_backward": (
        "Your gradient matches the backward pass with stride 1: with stride s, output position (y, x) used "
        "input positions (y*s + i, x*s + j), and the gradient must flow back to exactly those positions."),
    "weights_transposed": (
        "Your result matches the weights read as (C_in, C_out, kH, kW): the layout is (C_out, C_in, kH, kW), "
        "so w[o, c] is the filter that takes input channel c to output channel o."),
    "channels_last": (
        "Your result matches channels-last data (N, H, W, C): the course's layout is channels-first "
        "(N, C, H, W), with the channel axis at position 1 and the spatial axes last."),
    **FORMULA_SENTENCES,  # activations_losses and derivations (course_grader/formula_misconceptions.py)
    **INVARIANCE_SENTENCES,  # aliasing_gp_invertibility (course_grader/invariance_misconceptions.py)
    **EFFICIENT_SENTENCES,  # efficient_counting (course_grader/efficient_misconceptions.py)
}

MAX_CALLS = 64          # calls of one test that are looked at
MAX_ELEMENTS = 2_000_000  # skip variants on huge arrays


def sentence(key):
    return SENTENCES[key]


# -- comparing plain data -------------------------------------------------------------------
def _array(value):
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= MAX_ELEMENTS:
        return value.astype(np.float64)
    return None


def _same(got, expected):
    """True if the student's value equals a candidate (arrays: same shape, close values)."""
    if expected is None:
        return False
    if isinstance(expected, np.ndarray):
        g = _array(got)
        if g is None or g.shape != expected.shape:
            return False
        scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1.0)
        return bool(np.allclose(g, expected, rtol=1e-4, atol=1e-5 * scale))
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return False
        return all(_same(g, e) for g, e in zip(got, expected))
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        return False
    return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-9)


def _off_by_one_array(got, ref, spatial_from):
    """Same leading axes, spatial sizes off by at most one (some by exactly one), overlap equal."""
    g = _array(got)
    if g is None or g.ndim != ref.ndim or g.shape[:spatial_from] != ref.shape[:spatial_from]:
        return False
    diffs = [gs - rs for gs, rs in zip(g.shape[spatial_from:], ref.shape[spatial_from:])]
    if not diffs or any(abs(d) > 1 for d in diffs) or not any(diffs):
        return False
    common = tuple(slice(0, min(a, b)) for a, b in zip(g.shape, ref.shape))
    if any(min(a, b) == 0 for a, b in zip(g.shape, ref.shape)):
        return True
    return _same(g[common], ref[common])


# -- the variants, per student function --------------------------------------------------
def _cnnmath():
    import cnnmath
    return cnnmath


def _bind(func, args, kwargs):
    try:
        bound = inspect.signature(func).bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return bound.arguments


def _conv_layer(x, w, b=None, stride=1, padding=0):
    """Variants of a channels-first conv layer (conv1d_layer, conv2d, conv2d_forward)."""
    cm = _cnnmath()
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    b = None if b is None else np.asarray(b, dtype=np.float64)
    if x.ndim < 3 or w.ndim != x.ndim:
        return None, []
    spatial = tuple(range(2, x.ndim))
    conv = lambda x_, w_, p_: cm.conv(x_, w_, b, stride=stride, padding=p_)  # noqa: E731
    ref = conv(x, w, padding)
    variants = [("flipped_kernel", lambda: conv(x, np.flip(w, axis=spatial), padding))]
    if isinstance(padding, (int, np.integer)) and padding > 0:
        variants += [("padding_forgotten", lambda: conv(x, w, 0)),
                     ("padding_doubled", lambda: conv(x, w, 2 * padding))]
    if x.shape[1] == w.shape[0] and (b is None or b.shape[0] == w.shape[1]) and w.shape[0] != 1:
        variants.append(("weights_transposed", lambda: conv(x, np.swapaxes(w, 0, 1), padding)))
    last = (0,) + spatial + (1,)
    variants.append(("channels_last", lambda: np.transpose(ref, last)))
    if x.shape[-1] == w.shape[1]:
        first = (0, x.ndim - 1) + tuple(range(1, x.ndim - 1))
        variants.append(("channels_last", lambda: np.transpose(conv(np.transpose(x, first), w, padding), last)))
    variants.append(("output_size_off_by_one", lambda got: _off_by_one_array(got, ref, 2)))
    return ref, variants


def _cross_correlate2d(x, k):
    cm = _cnnmath()
    x, k = np.asarray(x, dtype=np.float64), np.asarray(k, dtype=np.float64)
    ref = cm.cross_correlate(x, k, mode="valid")
    return ref, [("flipped_kernel", lambda: cm.convolve(x, k, mode="valid")),
                 ("output_size_off_by_one", lambda got: _off_by_one_array(got, ref, 0))]


def _cross_correlate1d(x, k, mode="valid"):
    cm = _cnnmath()
    x, k = np.asarray(x, dtype=np.float64), np.asarray(k, dtype=np.float64)
    ref = cm.cross_correlate(x, k, mode=mode)
    return ref, [("flipped_kernel", lambda: cm.convolve(x, k, mode=mode)),
                 ("output_size_off_by_one", lambda got: _off_by_one_array(got, ref, 0))]


def _grad_weight(dout, x, kernel_size, stride=1, padding=0):
    cm = _cnnmath()
    dout, x = np.asarray(dout, dtype=np.float64), np.asarray(x, dtype=np.float64)
    kernel_size = tuple(int(k) for k in np.atleast_1d(kernel_size))
    if x.ndim != 4 or dout.ndim != 4 or len(kernel_size) != 2:
        return None, []
    w0 = np.zeros((dout.shape[1], x.shape[1]) + kernel_size)
    ref = cm.conv_backward(dout, x, w0, stride=stride, padding=padding)[1]
    variants = [("flipped_kernel", lambda: ref[..., ::-1, ::-1])]
    if stride != 1:
        def dense():
            # the weight gradient with dout placed densely (stride 1): correlate x_pad with dout
            xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
            full = cm.conv(np.swapaxes(xp, 0, 1), np.swapaxes(dout, 0, 1))   # (C_in, C_out, ., .)
            return np.swapaxes(full[:, :, :kernel_size[0], :kernel_size[1]], 0, 1)
        variants.append(("stride_ignored_backward", dense))
    if isinstance(padding, (int, np.integer)) and padding > 0:
        def unpadded():
            h = (x.shape[2] - kernel_size[0]) // stride + 1
            wd = (x.shape[3] - kernel_size[1]) // stride + 1
            if (h, wd) != dout.shape[2:]:
                return None
            return cm.conv_backward(dout, x, w0, stride=stride, padding=0)[1]
        variants.append(("padding_forgotten", unpadded))
    variants.append(("weights_transposed", lambda: np.swapaxes(ref, 0, 1)))
    return ref, variants


def _grad_input(dout, w, x_shape, stride=1, padding=0):
    cm = _cnnmath()
    dout, w = np.asarray(dout, dtype=np.float64), np.asarray(w, dtype=np.float64)
    x_shape = tuple(int(v) for v in x_shape)
    if w.ndim != 4 or dout.ndim != 4 or len(x_shape) != 4:
        return None, []
    grad = lambda w_, s_: cm.conv_backward(dout, np.zeros(x_shape), w_, stride=s_, padding=padding)[0]  # noqa: E731
    ref = grad(w, stride)
    n, c, h, wd = x_shape
    kh, kw = w.shape[2:]
    variants = [("flipped_kernel", lambda: grad(w[..., ::-1, ::-1], stride))]
    if stride != 1:
        def dense():
            hs, ws = dout.shape[2] + kh - 1, dout.shape[3] + kw - 1
            small = cm.conv_backward(dout, np.zeros((n, c, hs, ws)), w)[0]
            dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
            dxp[:, :, :hs, :ws] = small[:, :, :h + 2 * padding, :wd + 2 * padding]
            return dxp[:, :, padding:padding + h, padding:padding + wd]
        variants.append(("stride_ignored_backward", dense))
    if isinstance(padding, (int, np.integer)) and padding > 0:
        def uncropped():
            hp, wp = h + 2 * padding, wd + 2 * padding
            return cm.conv_backward(dout, np.zeros((n, c, hp, wp)), w, stride=stride, padding=0)[0]
        variants.append(("padding_forgotten", uncropped))
    if w.shape[0] == w.shape[1]:
        variants.append(("weights_transposed", lambda: grad(np.swapaxes(w, 0, 1), stride)))
    return ref, variants


def _output_size(n, k, stride=1, padding=0, dilation=1):
    cm = _cnnmath()
    size = lambda p_: int(cm.output_size(n, k, stride=stride, padding=p_, dilation=dilation))  # noqa: E731
    ref = size(padding)
    variants = []
    if isinstance(padding, (int, np.integer)) and padding > 0:
        variants += [("padding_forgotten", lambda: size(0)), ("padding_doubled", lambda: size(2 * padding))]
    variants += [("output_size_off_by_one", lambda: ref - 1), ("output_size_off_by_one", lambda: ref + 1)]
    return ref, variants


def _output_shape_2d(hw, kernel_size, stride=1, padding=0, dilation=1):
    cm = _cnnmath()
    shape = lambda p_: tuple(int(v) for v in cm.output_size(tuple(hw), kernel_size, stride=stride,  # noqa: E731
                                                           padding=p_, dilation=dilation))
    ref = shape(padding)
    variants = []
    if not isinstance(padding, str) and np.any(np.asarray(padding) > 0):
        variants += [("padding_forgotten", lambda: shape(0)),
                     ("padding_doubled", lambda: shape(tuple(2 * np.broadcast_to(padding, (2,)).astype(int))))]

    def off(got):
        try:
            diffs = [int(g) - r for g, r in zip(got, ref)]
        except (TypeError, ValueError):
            return False
        return len(diffs) == 2 and all(abs(d) <= 1 for d in diffs) and any(diffs)
    variants.append(("output_size_off_by_one", off))
    return ref, variants


def _pool(kind):
    def variants(x, k, stride=None, padding=0):
        cm = _cnnmath()
        pool = getattr(cm, kind)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 4:
            return None, []
        ref = pool(x, k, stride=stride, padding=padding)
        out = []
        if isinstance(padding, (int, np.integer)) and padding > 0:
            out += [("padding_forgotten", lambda: pool(x, k, stride=stride, padding=0)),
                    ("padding_doubled", lambda: pool(x, k, stride=stride, padding=2 * padding))]
        out.append(("channels_last", lambda: np.transpose(ref, (0, 2, 3, 1))))
        if x.shape[-1] > 0:
            out.append(("channels_last",
                        lambda: np.transpose(pool(np.transpose(x, (0, 3, 1, 2)), k, stride=stride, padding=padding),
                                             (0, 2, 3, 1))))
        out.append(("output_size_off_by_one", lambda got: _off_by_one_array(got, ref, 2)))
        return ref, out
    return variants


def _conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0):
    cm = _cnnmath()
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    b = None if b is None else np.asarray(b, dtype=np.float64)
    if x.ndim != 4 or w.ndim != 4:
        return None, []
    ct = lambda w_, p_: cm.conv_transpose(x, w_, b, stride=stride, padding=p_,  # noqa: E731
                                          output_padding=output_padding)
    ref = ct(w, padding)
    out = [("flipped_kernel", lambda: ct(w[..., ::-1, ::-1], padding))]
    if isinstance(padding, (int, np.integer)) and padding > 0:
        out += [("padding_forgotten", lambda: ct(w, 0)), ("padding_doubled", lambda: ct(w, 2 * padding))]
    if w.shape[0] == w.shape[1] and w.shape[0] > 1:
        out.append(("weights_transposed", lambda: ct(np.swapaxes(w, 0, 1), padding)))
    out.append(("channels_last", lambda: np.transpose(ref, (0, 2, 3, 1))))
    out.append(("output_size_off_by_one", lambda got: _off_by_one_array(got, ref, 2)))
    return ref, out


def _transposed_output_size(n, k, stride=1, padding=0, output_padding=0):
    cm = _cnnmath()
    size = lambda p_: int(cm.transposed_output_size(n, k, stride=stride, padding=p_,  # noqa: E731
                                                    output_padding=output_padding))
    ref = size(padding)
    out = []
    if isinstance(padding, (int, np.integer)) and padding > 0:
        out += [("padding_forgotten", lambda: size(0)), ("padding_doubled", lambda: size(2 * padding))]
    out += [("output_size_off_by_one", lambda: ref - 1), ("output_size_off_by_one", lambda: ref + 1)]
    return ref, out


#: student function name -> a function of the same arguments returning (correct result, variants)
DIAGNOSERS = {
    "max_pool2d": _pool("max_pool"),
    "avg_pool2d": _pool("avg_pool"),
    "conv_transpose2d": _conv_transpose2d,
    "conv_transpose2d_via_conv": _conv_transpose2d,
    "transposed_output_size": _transposed_output_size,
    "conv2d": _conv_layer,
    "conv2d_forward": _conv_layer,
    "conv1d_layer": _conv_layer,
    "cross_correlate2d": _cross_correlate2d,
    "cross_correlate1d": _cross_correlate1d,
    "conv2d_grad_weight": _grad_weight,
    "conv2d_grad_input": _grad_input,
    "output_size": _output_size,
    "output_shape_2d": _output_shape_2d,
    **FORMULA_DIAGNOSERS,
    **INVARIANCE_DIAGNOSERS,
    **EFFICIENT_DIAGNOSERS,
}


def diagnose(name, args, kwargs, got):
    """The misconception key that explains ``got = name(*args, **kwargs)``, or None.

    Returns None when the function is unknown, the arguments don't fit, the answer is
    right, or no variant reproduces it. Never raises.
    """
    maker = DIAGNOSERS.get(name)
    if maker is None:
        return None
    try:
        bound = _bind(maker, args, kwargs)
        if bound is None:
            return None
        ref, variants = maker(**bound)
        if ref is None or _same(got, ref):
            return None
        for key, make in variants:
            try:
                if make.__code__.co_argcount == 1:       # a predicate on the student's value
                    if make(got):
                        return key
                    continue
                candidate = make()
                if candidate is None or _same(candidate, ref):
                    continue
                if _same(got, candidate):
                    return key
            except Exception:
                continue
    except Exception:
        return None
    return None


def diagnose_calls(calls):
    """The first misconception explaining one of a failed test's calls: (key, sentence) or None.

    ``calls`` is a list of (function name, args, kwargs, returned value) in call order.
    """
    for name, args, kwargs, got in calls[:MAX_CALLS]:
        key = diagnose(name, args, kwargs, got)
        if key:
            return key, SENTENCES[key]
    return None
