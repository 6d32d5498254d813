"""Shared test helpers: array comparison with shape/dtype-first messages, a torch oracle
bridge, and float64 centred-difference gradients against an upstream gradient."""

from __future__ import annotations

import zlib

import numpy as np
import pytest


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


def per_test_rng(namespace, name="RNG"):
    """An autouse fixture that rebinds ``namespace[name]`` (a test module's global generator) before
    each test to a generator seeded by the test's name: the same numbers in any order (pytest -n, -k)
    as when run alone. Use as ``_fresh_rng = per_test_rng(globals())``."""

    @pytest.fixture(autouse=True)
    def _fresh_rng(request):
        namespace[name] = np.random.default_rng(zlib.crc32(request.node.name.encode()))

    return _fresh_rng


def make_conv_case(case, dtype=np.float64, n=2, seed=0, transposed=False):
    """Random ``x, w, b, kwargs`` for a ``(spatial, C_in, C_out, kernel, kwargs, bias)`` case.

    ``x`` is ``(n, C_in, *spatial)``; ``w`` is ``(C_out, C_in / groups, *kernel)``, or with
    ``transposed`` the transposed-convolution layout ``(C_in, C_out / groups, *kernel)``;
    ``b`` is ``(C_out,)`` or None. Drawn from ``default_rng(seed)`` in the order x, w, b.
    """
    spatial, cin, cout, k, kw, bias = case
    rng = np.random.default_rng(seed)
    groups = kw.get("groups", 1)
    x = rng.standard_normal((n, cin) + spatial).astype(dtype)
    w_lead = (cin, cout // groups) if transposed else (cout, cin // groups)
    w = rng.standard_normal(w_lead + k).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if bias else None
    return x, w, b, kw
