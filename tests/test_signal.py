"""cross_correlate / convolve against numpy.convolve and scipy.signal (all ranks and modes),
the naive twins, properties (commutativity, the flip identity) and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnmath import convolve, convolve_naive, cross_correlate, cross_correlate_naive
from tests.helpers import assert_array_close

MODES = ["valid", "same", "full"]
# (x shape, k shape): ranks 1-4, odd and even kernels, kernel larger than x (valid swaps)
SHAPES = [
    ((11,), (3,)), ((10,), (4,)), ((3,), (7,)), ((5,), (5,)),
    ((7, 9), (3, 3)), ((8, 6), (2, 4)), ((2, 3), (4, 5)),
    ((5, 6, 7), (3, 2, 3)), ((4, 4, 4), (2, 2, 2)),
    ((3, 4, 3, 5), (2, 3, 2, 2)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("xs,ks", SHAPES)
def test_match_scipy_any_rank(xs, ks, mode):
    """convolve == scipy.signal.convolve and cross_correlate == scipy.signal.correlate."""
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal(xs), rng.standard_normal(ks)
    assert_array_close(convolve(x, k, mode), scipy.signal.convolve(x, k, mode, method="direct"),
                       what=f"convolve {mode}")
    assert_array_close(cross_correlate(x, k, mode), scipy.signal.correlate(x, k, mode, method="direct"),
                       what=f"cross_correlate {mode}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n,m", [(9, 3), (8, 4), (3, 8), (1, 1), (6, 6)])
def test_convolve_matches_numpy_1d(n, m, mode):
    """1-D convolve equals numpy.convolve in every mode (numpy puts the longer input first)."""
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal(n), rng.standard_normal(m)
    if mode == "same" and m > n:
        # numpy's "same" has the length of the longer input; ours (like scipy) that of x
        assert_array_close(convolve(k, x, mode), np.convolve(x, k, mode), what="numpy.convolve same, k longer")
        assert convolve(x, k, mode).shape == (n,)
    else:
        assert_array_close(convolve(x, k, mode), np.convolve(x, k, mode), what=f"numpy.convolve {mode}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("xs,ks", [SHAPES[1], SHAPES[2], SHAPES[5], SHAPES[6], SHAPES[8]])
def test_naive_twins_agree(xs, ks, mode):
    """The loop versions agree with the vectorized ones."""
    rng = np.random.default_rng(2)
    x, k = rng.standard_normal(xs), rng.standard_normal(ks)
    assert_array_close(cross_correlate_naive(x, k, mode), cross_correlate(x, k, mode), what="naive correlate")
    assert_array_close(convolve_naive(x, k, mode), convolve(x, k, mode), what="naive convolve")


def test_seed004_examples_and_defaults():
    """Defaults: cross_correlate is "valid", convolve is "full"; a hand-computed 1-D case."""
    x = np.array([1.0, 2.0, 4.0, 7.0])
    k = np.array([1.0, 0.0, -1.0])
    # (x ⋆ k)[t] = x[t] - x[t+2]
    assert_array_close(cross_correlate(x, k), np.array([-3.0, -5.0]), what="correlate valid")
    # (x * k)[t] = x[t] - x[t-2] over the full range
    assert_array_close(convolve(x, k), np.array([1.0, 2.0, 3.0, 5.0, -4.0, -7.0]), what="convolve full")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_relation_to_torch_same_padding():
    """scipy "same" = conv-style padding with m//2 zeros before; equals torch 'same' for odd m only."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 7))
    for ks in [(3, 5), (2, 4), (3, 4)]:
        k = rng.standard_normal(ks)
        t = torch.nn.functional.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None],
                                       padding="same")[0, 0].numpy()
        ours = cross_correlate(x, k, "same")
        pads = [(m // 2, (m - 1) // 2) for m in ks]
        assert_array_close(ours, cross_correlate(np.pad(x, pads), k, "valid"), what="same as explicit padding")
        if all(m % 2 for m in ks):
            assert_array_close(ours, t, what="odd kernel: scipy same == torch same")
        else:
            assert not np.allclose(ours, t)


def test_dtypes_and_no_mutation():
    """float32 stays float32, ints become float64, inputs are untouched."""
    x = np.arange(6, dtype=np.float32)
    k = np.array([1.0, 2.0], dtype=np.float32)
    keep = x.copy()
    assert cross_correlate(x, k).dtype == np.float32
    assert convolve(x, k, "same").dtype == np.float32
    assert convolve(np.arange(4), np.arange(2)).dtype == np.float64
    assert convolve(x, np.array([1.0, 2.0])).dtype == np.float64
    np.testing.assert_array_equal(x, keep)


arrays_1_3d = st.integers(1, 3).flatmap(
    lambda d: st.tuples(st.lists(st.integers(1, 5), min_size=d, max_size=d),
                        st.lists(st.integers(1, 5), min_size=d, max_size=d), st.integers(0, 2**32 - 1)))


@settings(max_examples=40, deadline=None)
@given(arrays_1_3d)
def test_convolve_commutative_and_flip_identity(args):
    """convolve(x, k) == convolve(k, x) (full); convolve(x, k, mode) == cross_correlate(x, flip(k), mode)."""
    xs, ks, seed = args
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal(xs), rng.standard_normal(ks)
    assert_array_close(convolve(x, k), convolve(k, x), what="commutativity")
    for mode in MODES:
        try:
            expected = cross_correlate(x, np.flip(k), mode)
        except ValueError:
            continue  # valid with neither array containing the other
        assert_array_close(convolve(x, k, mode), expected, what=f"flip identity {mode}")


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_cross_correlate_not_commutative(n, m, seed):
    """cross_correlate(x, k) is cross_correlate(k, x) reversed, so generically they differ."""
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal(n), rng.standard_normal(m)
    a, b = cross_correlate(x, k, "full"), cross_correlate(k, x, "full")
    assert_array_close(a, b[::-1], what="reversal identity")
    assert not np.allclose(a, b)  # random data: a palindromic result has probability 0


@pytest.mark.parametrize("args,exc,match", [
    ((np.ones(3), np.ones((2, 2)), "full"), ValueError, r"same number of dimensions.*\(3,\).*\(2, 2\)"),
    ((np.ones((3, 2)), np.ones((2, 3)), "valid"), ValueError, r'mode="valid".*\(3, 2\).*\(2, 3\)'),
    ((np.ones(3), np.ones(2), "circular"), ValueError, r"mode must be one of.*'circular'"),
    ((np.ones(3), np.ones(0), "full"), ValueError, r"must not be empty"),
    ((np.float64(1.0), np.ones(1), "full"), ValueError, r"at least one dimension"),
    ((np.array(["a", "b"]), np.ones(2), "full"), TypeError, r"x must be a real numeric array"),
    ((np.ones(2), np.ones(2) * 1j, "full"), TypeError, r"k must be a real numeric array"),
])
def test_errors(args, exc, match):
    """Bad arguments raise errors naming the argument and its value."""
    for fn in (convolve, cross_correlate, convolve_naive):
        with pytest.raises(exc, match=match):
            fn(*args)
