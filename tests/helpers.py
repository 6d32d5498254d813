"""Shared test helpers: array comparison with shape/dtype-first messages, a torch oracle
bridge, and float64 centred-difference gradients against an upstream gradient."""

from __future__ import annotations

import numpy as np


def assert_array_close(actual, expected, rtol=1e-7, atol=1e-9, what="result", check_dtype=True):
    """Compare arrays the way tinygrad's helper_test_op does: shape, then dtype, then values."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    if check_dtype:
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != expected {expected.dtype}"
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        idx = np.unravel_index(np.argmax(diff), diff.shape) if diff.ndim else ()
        raise AssertionError(
            f"{what}: values differ, max abs error {diff.max():.3e} at index {idx} "
            f"(got {actual[idx]!r}, expected {expected[idx]!r}; rtol={rtol}, atol={atol})"
        )


def to_torch(a):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


def numeric_gradient(f, x, dout, eps=1e-6):
    """Centred-difference gradient of ``sum(f(x) * dout)`` with respect to ``x`` (float64).

    ``f`` maps an array shaped like ``x`` to an array shaped like ``dout``. ``x`` is not mutated.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = np.sum(np.asarray(f(x)) * dout)
        flat[i] = old - eps
        fm = np.sum(np.asarray(f(x)) * dout)
        flat[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return grad


def relative_error(a, b):
    """max |a - b| / max(|a| + |b|, tiny): the CS231n gradient-check measure."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.maximum(np.abs(a) + np.abs(b), 1e-12)
    return float(np.max(np.abs(a - b) / denom)) if a.size else 0.0


def assert_gradient(analytic, f, x, dout, bound=1e-6, what="gradient"):
    """Assert the analytic gradient matches float64 centred differences within ``bound``."""
    num = numeric_gradient(f, x, dout)
    assert np.shape(analytic) == num.shape, f"{what}: shape {np.shape(analytic)} != {num.shape}"
    err = relative_error(analytic, num)
    assert err < bound, f"{what}: relative error {err:.2e} exceeds {bound:.0e}"
