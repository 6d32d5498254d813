"""cnnmath.architectures: channel shuffle against torch, its backward by centred differences,
compound scaling against SymPy and against the multiply-adds of scaled layers, max-pool
comparisons against torch's unfolded windows."""
import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import cnnmath as cm


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 4), 2), ((1, 12, 5), 3), ((3, 8, 2, 2, 2), 4),
                                           ((1, 5, 3, 3), 1), ((1, 5, 3, 3), 5)])
def test_channel_shuffle_matches_torch(shape, groups):
    """channel_shuffle equals torch.nn.functional.channel_shuffle and nn.ChannelShuffle, 1D to 3D."""
    x = np.random.default_rng(0).standard_normal(shape)
    ref = F.channel_shuffle(torch.from_numpy(x), groups).numpy()
    np.testing.assert_array_equal(cm.channel_shuffle(x, groups), ref)
    np.testing.assert_array_equal(cm.channel_shuffle(x, groups),
                                  torch.nn.ChannelShuffle(groups)(torch.from_numpy(x)).numpy())
    x32 = x.astype(np.float32)
    assert cm.channel_shuffle(x32, groups).dtype == np.float32
    assert not np.shares_memory(cm.channel_shuffle(x, groups), x)


def test_channel_shuffle_seed_order_and_inverse():
    """g = 3 on 9 channels deals 0, 3, 6, 1, 4, 7, 2, 5, 8; the backward undoes the forward."""
    x = np.arange(9.0).reshape(1, 9, 1)
    assert cm.channel_shuffle(x, 3)[0, :, 0].tolist() == [0, 3, 6, 1, 4, 7, 2, 5, 8]
    y = np.random.default_rng(1).standard_normal((2, 12, 3))
    for g in (1, 2, 3, 4, 6, 12):
        np.testing.assert_array_equal(cm.channel_shuffle_backward(cm.channel_shuffle(y, g), g), y)
        np.testing.assert_array_equal(cm.channel_shuffle_backward(y, g), cm.channel_shuffle(y, 12 // g))


def test_channel_shuffle_backward_centred_differences():
    """dL/dx of L = sum(G * channel_shuffle(x, g)) by float64 centred differences."""
    rng = np.random.default_rng(2)
    x, G = rng.standard_normal((1, 6, 2, 2)), rng.standard_normal((1, 6, 2, 2))
    for g in (2, 3):
        num = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += 1e-6
            xm[idx] -= 1e-6
            num[idx] = (np.sum(G * cm.channel_shuffle(xp, g)) - np.sum(G * cm.channel_shuffle(xm, g))) / 2e-6
        np.testing.assert_allclose(cm.channel_shuffle_backward(G, g), num, rtol=1e-7, atol=1e-8)
        got = torch.from_numpy(x).requires_grad_()
        (F.channel_shuffle(got, g) * torch.from_numpy(G)).sum().backward()
        np.testing.assert_allclose(cm.channel_shuffle_backward(G, g), got.grad.numpy(), rtol=0, atol=0)


def test_compound_scaling_against_sympy_and_scaled_layers():
    """(d w^2 r^2)^phi is what SymPy's substitution gives, and the ratio of the MACs of a scaled stack."""
    d, w, r, L, H, W, Ci, Co, k = sp.symbols("d w r L H W C_i C_o k", positive=True)
    macs = L * H * W * Ci * Co * k**2
    factor = sp.simplify(macs.subs({L: d * L, H: r * H, W: r * W, Ci: w * Ci, Co: w * Co}, simultaneous=True) / macs)
    for dv, wv, rv in ((2, 1, 1), (1, 2, 3), (1.2, 1.1, 1.15), (0.5, 1.5, 2.0)):
        assert cm.compound_scaling_factor(dv, wv, rv) == pytest.approx(float(factor.subs({d: dv, w: wv, r: rv})), rel=1e-12)
    assert cm.compound_scaling_factor(1.2, 1.1, 1.15, phi=3) == pytest.approx((1.2 * 1.1**2 * 1.15**2) ** 3, rel=1e-12)
    # a 3-layer stack of 3x3 "same" convolutions, 8 channels on 16x16, scaled by d=2, w=2, r=2 (integers)
    base = sum(cm.conv_macs((8, 16, 16), 8, 3, padding=1) for _ in range(3))
    scaled = sum(cm.conv_macs((16, 32, 32), 16, 3, padding=1) for _ in range(6))
    assert scaled / base == cm.compound_scaling_factor(2, 2, 2) == 32.0


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "2", True])
def test_compound_scaling_rejects_bad_factors(bad):
    """A non-positive or non-numeric factor is a one-line ValueError naming the argument."""
    with pytest.raises(ValueError, match=r"^width must be a positive finite number, got"):
        cm.compound_scaling_factor(1.0, bad, 1.0)


@pytest.mark.parametrize("in_shape, k, s, p", [((8, 16, 16), 2, None, 0), ((3, 7, 9), 3, 2, 1), ((2, 10), 3, 1, 0),
                                               ((2, 6, 6, 6), 2, 2, 0), ((4, 9, 8), (3, 2), (2, 1), 0)])
def test_max_pool_comparisons_against_unfolded_windows(in_shape, k, s, p):
    """One comparison fewer than the window size, per window torch's unfold produces, per channel."""
    got = cm.max_pool_comparisons(in_shape, k, s, p)
    c, spatial = in_shape[0], in_shape[1:]
    ks = (k,) * len(spatial) if isinstance(k, int) else k
    ss = ks if s is None else ((s,) * len(spatial) if isinstance(s, int) else s)
    t = torch.zeros((1, c) + spatial)
    windows = 1
    for axis, (kk, sv) in enumerate(zip(ks, ss)):
        t = F.pad(t.movedim(2 + axis, -1), (p, p)).unfold(-1, kk, sv)
        windows *= t.shape[-2]
        t = t[..., 0].movedim(-1, 2 + axis)
    assert got == c * windows * (int(np.prod(ks)) - 1)
    assert cm.max_pool_comparisons((8, 16, 16), 2) == 1536   # seed 003, Pool1


def test_channel_shuffle_rejects_bad_groups():
    """groups that do not divide C, or are not positive ints, are one-line errors naming groups."""
    x = np.zeros((1, 6, 2))
    for bad, msg in ((4, "groups must divide the number of channels 6, got 4"), (0, "groups must be a positive int, got 0"),
                     (2.0, "groups must be a positive int, got 2.0")):
        with pytest.raises(ValueError, match=f"^{msg}$"):
            cm.channel_shuffle(x, bad)
        with pytest.raises(ValueError, match=f"^{msg}$"):
            cm.channel_shuffle_backward(x, bad)


def test_docstring_examples():
    """The examples in cnnmath.architectures' docstrings run and print what they claim."""
    import doctest

    import cnnmath.architectures

    result = doctest.testmod(cnnmath.architectures, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 3
