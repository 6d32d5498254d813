"""cnnmath.efficient: depthwise-separable and (2+1)D convolutions against torch, their backward
passes against torch autograd and centred differences, and their counts against torch numel and
a brute-force multiply count."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnmath as cm
from tests.helpers import assert_array_close, assert_gradient, per_test_rng, to_torch

RNG = np.random.default_rng(7)

_fresh_rng = per_test_rng(globals())  # each test draws from its own generator, seeded by its name


# ------------------------------------------------------------------------------------------
# Depthwise separable
# ------------------------------------------------------------------------------------------

SEP_CASES = [
    # (nd, c_in, c_out, M, k, stride, padding, dilation, bias)
    (2, 3, 5, 1, 3, 1, 1, 1, True),
    (2, 4, 6, 2, 3, 2, "valid", 1, False),
    (2, 2, 3, 3, (2, 3), (1, 2), ((1, 0), (2, 1)), (2, 1), True),
    (1, 3, 4, 1, 5, 2, 2, 1, True),
    (3, 2, 3, 1, 3, 1, "same", 1, True),
]


def _sep_arrays(nd, c_in, c_out, m, k, bias):
    kk = k if isinstance(k, tuple) else (k,) * nd
    size = {1: (11,), 2: (7, 8), 3: (5, 5, 6)}[nd]
    x = RNG.normal(size=(2, c_in) + size)
    wd = RNG.normal(size=(c_in * m, 1) + kk)
    wp = RNG.normal(size=(c_out, c_in * m) + (1,) * nd)
    bd = RNG.normal(size=c_in * m) if bias else None
    bp = RNG.normal(size=c_out) if bias else None
    return x, wd, wp, bd, bp


def _torch_pad(x, padding, nd):
    """torch's functional conv takes no (before, after) pairs: pad explicitly."""
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        return F.pad(x, [v for pair in reversed(padding) for v in pair]), 0
    return x, padding


@pytest.mark.parametrize("case", SEP_CASES, ids=[str(i) for i in range(len(SEP_CASES))])
def test_depthwise_separable_vs_torch_forward_and_backward(case):
    """Forward == torch conv(groups=C_in) then 1x1 conv; all five gradients == torch autograd."""
    nd, c_in, c_out, m, k, s, p, d, bias = case
    x, wd, wp, bd, bp = _sep_arrays(nd, c_in, c_out, m, k, bias)
    y = cm.depthwise_separable_conv(x, wd, wp, bd, bp, s, p, d)
    conv = [None, F.conv1d, F.conv2d, F.conv3d][nd]
    ts = {n: to_torch(a).requires_grad_(True) for n, a in
          dict(x=x, wd=wd, wp=wp, bd=bd, bp=bp).items() if a is not None}
    xin, tp = _torch_pad(ts["x"], p, nd)
    h = conv(xin, ts["wd"], ts.get("bd"), s, tp, d, groups=c_in)
    yt = conv(h, ts["wp"], ts.get("bp"))
    assert_array_close(y, yt.detach().numpy(), what="depthwise separable forward")
    dout = RNG.normal(size=y.shape)
    yt.backward(to_torch(dout))
    dx, dwd, dwp, dbd, dbp = cm.depthwise_separable_conv_backward(dout, x, wd, wp, bd, s, p, d)
    for name, ours in dict(x=dx, wd=dwd, wp=dwp, bd=dbd, bp=dbp).items():
        if name in ts:
            assert_array_close(ours, ts[name].grad.numpy(), rtol=1e-7, atol=1e-10, what=f"d{name}")


def test_depthwise_separable_gradient_check_and_2d_pointwise():
    """Centred differences for dx, dw_depthwise, dw_pointwise; a (C_out, C_in M) pointwise matrix works."""
    x, wd, wp, bd, bp = _sep_arrays(2, 2, 3, 2, 3, True)
    wp2 = wp[:, :, 0, 0]
    y = cm.depthwise_separable_conv(x, wd, wp2, bd, bp, 2, 1)
    assert_array_close(y, cm.depthwise_separable_conv(x, wd, wp, bd, bp, 2, 1), what="2-D pointwise")
    dout = RNG.normal(size=y.shape)
    dx, dwd, dwp, dbd, dbp = cm.depthwise_separable_conv_backward(dout, x, wd, wp2, bd, 2, 1)
    assert dwp.shape == wp2.shape
    f = cm.depthwise_separable_conv
    assert_gradient(dx, lambda v: f(v, wd, wp2, bd, bp, 2, 1), x, dout, bound=1e-5, what="dx")
    assert_gradient(dwd, lambda v: f(x, v, wp2, bd, bp, 2, 1), wd, dout, bound=1e-5, what="dw_depthwise")
    assert_gradient(dwp, lambda v: f(x, wd, v, bd, bp, 2, 1), wp2, dout, bound=1e-5, what="dw_pointwise")
    assert_gradient(dbd, lambda v: f(x, wd, wp2, v, bp, 2, 1), bd, dout, bound=1e-5, what="db_depthwise")
    assert_gradient(dbp, lambda v: f(x, wd, wp2, bd, v, 2, 1), bp, dout, bound=1e-5, what="db_pointwise")


@pytest.mark.parametrize("c_in, c_out, k, m", [(3, 8, 3, 1), (16, 32, 3, 1), (8, 4, 5, 2), (6, 12, (3, 1), 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_separable_params_vs_torch_numel(c_in, c_out, k, m, bias):
    dw = torch.nn.Conv2d(c_in, c_in * m, k, groups=c_in, bias=bias)
    pw = torch.nn.Conv2d(c_in * m, c_out, 1, bias=bias)
    std = torch.nn.Conv2d(c_in, c_out, k, bias=bias)
    numel = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    assert cm.depthwise_separable_params(c_in, c_out, k, m, bias=bias) == numel(dw) + numel(pw)
    assert cm.standard_conv_params(c_in, c_out, k, bias=bias) == numel(std)


def test_seed_001_separable_count_and_cost_ratio():
    """Without biases, M = 1: C_in k^2 + C_in C_out (seed 001, C = C_in); ratio 1/C_out + 1/k^2 exactly."""
    for c_in, c_out, k in [(3, 8, 3), (32, 64, 3), (17, 5, 7)]:
        sep = cm.depthwise_separable_params(c_in, c_out, k, bias=False)
        std = cm.standard_conv_params(c_in, c_out, k, bias=False)
        assert sep == c_in * k * k + c_in * c_out
        assert Fraction(sep, std) == cm.separable_cost_ratio(c_out, k) == Fraction(1, c_out) + Fraction(1, k * k)
        shape = (c_in, 12, 12)
        macs = Fraction(cm.depthwise_separable_macs(shape, c_out, k, padding=1),
                        cm.standard_conv_macs(shape, c_out, k, padding=1))
        assert macs == cm.separable_cost_ratio(c_out, k)


def _brute_macs(x_shape, w_shape, groups=1, **kw):
    """Products actually performed: all-ones input and kernel (padding made of ones too) through
    cnnmath.conv_naive; each product contributes exactly 1 to the output sum."""
    nd = len(x_shape) - 1
    pads = kw.pop("pads", [(0, 0)] * nd)
    x = np.pad(np.ones((1,) + tuple(x_shape)), [(0, 0), (0, 0)] + list(pads), constant_values=1.0)
    return int(cm.conv_naive(x, np.ones(w_shape), None, groups=groups, **kw).sum())


def test_separable_macs_vs_brute_force():
    c_in, c_out, k, m = 3, 4, 3, 2
    shape = (c_in, 7, 6)
    dw = _brute_macs(shape, (c_in * m, 1, k, k), groups=c_in, stride=2, pads=[(1, 1), (1, 1)])
    mid = cm.conv_output_shape(shape, c_in * m, k, 2, 1)
    pw = _brute_macs(mid, (c_out, c_in * m, 1, 1))
    assert cm.depthwise_separable_macs(shape, c_out, k, stride=2, padding=1, depth_multiplier=m) == dw + pw
    assert cm.standard_conv_macs(shape, c_out, k, 2, 1) == _brute_macs(shape, (c_out, c_in, k, k), stride=2,
                                                                        pads=[(1, 1), (1, 1)])


# ------------------------------------------------------------------------------------------
# (2+1)D
# ------------------------------------------------------------------------------------------

P21_CASES = [
    # (c_in, c_out, M, t, k, stride, padding, dilation)
    (2, 3, 4, 3, 3, 1, 0, 1),
    (3, 2, 5, 2, 3, (2, 1, 2), (1, 1, 0), 1),
    (2, 4, 3, 3, (3, 2), 1, "same", (2, 1, 1)),
    (1, 2, 2, 3, 3, 1, ((2, 0), (1, 1), (0, 2)), 1),
]


def _p21_arrays(c_in, c_out, m, t, k):
    kh, kw = (k, k) if isinstance(k, int) else k
    x = RNG.normal(size=(2, c_in, 6, 7, 6))
    ws = RNG.normal(size=(m, c_in, 1, kh, kw))
    wt = RNG.normal(size=(c_out, m, t, 1, 1))
    return x, ws, wt, RNG.normal(size=m), RNG.normal(size=c_out)


def _torch_3d_pad(x, padding):
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        return F.pad(x, [v for pair in reversed(padding) for v in pair]), 0
    return x, padding


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("case", P21_CASES, ids=[str(i) for i in range(len(P21_CASES))])
def test_conv2plus1d_is_conv3d_with_the_rank_m_kernel(case):
    """Without ReLU and biases, (2+1)D == torch conv3d with sum_m w_t[o,m,tau] w_s[m,c,i,j]."""
    c_in, c_out, m, t, k, s, p, d = case
    x, ws, wt, _, _ = _p21_arrays(c_in, c_out, m, t, k)
    y = cm.conv2plus1d(x, ws, wt, stride=s, padding=p, dilation=d)
    w3 = cm.conv2plus1d_equivalent_kernel(ws, wt)
    xt, tp = _torch_3d_pad(to_torch(x), p)
    yt = F.conv3d(xt, to_torch(w3), None, s, tp, d)
    assert_array_close(y, yt.numpy(), rtol=1e-9, atol=1e-10, what="(2+1)D vs conv3d")


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", P21_CASES[:3], ids=["0", "1", "2"])
def test_conv2plus1d_forward_backward_vs_torch(case, relu):
    """The torch composition conv3d(1,k,k) -> [ReLU] -> conv3d(t,1,1), biases included; autograd grads."""
    c_in, c_out, m, t, k, s, p, d = case
    x, ws, wt, bs, bt = _p21_arrays(c_in, c_out, m, t, k)
    sv = cm._args.int_tuple(s, 3, "stride")
    dv = cm._args.int_tuple(d, 3, "dilation")
    kh, kw = ws.shape[3:]
    pads = cm._args.resolve_padding(p, 3, (t, kh, kw), sv, dv)
    ts = {n: to_torch(a).requires_grad_(True) for n, a in dict(x=x, ws=ws, wt=wt, bs=bs, bt=bt).items()}
    xt = F.pad(ts["x"], [v for pair in reversed(((0, 0),) + pads[1:]) for v in pair])
    h = F.conv3d(xt, ts["ws"], ts["bs"], (1, sv[1], sv[2]), 0, (1, dv[1], dv[2]))
    if relu:
        h = torch.relu(h)
    h = F.pad(h, [0, 0, 0, 0, *pads[0]])
    yt = F.conv3d(h, ts["wt"], ts["bt"], (sv[0], 1, 1), 0, (dv[0], 1, 1))
    y = cm.conv2plus1d(x, ws, wt, bs, bt, s, p, d, relu=relu)
    assert_array_close(y, yt.detach().numpy(), what="(2+1)D forward")
    dout = RNG.normal(size=y.shape)
    yt.backward(to_torch(dout))
    grads = cm.conv2plus1d_backward(dout, x, ws, wt, bs, s, p, d, relu=relu)
    for name, ours in zip(["x", "ws", "wt", "bs", "bt"], grads):
        assert_array_close(ours, ts[name].grad.numpy(), rtol=1e-7, atol=1e-10, what=f"d{name}")


def test_conv2plus1d_gradient_check_with_relu():
    x, ws, wt, bs, bt = _p21_arrays(1, 2, 2, 2, 2)
    x = x[:1, :, :4, :4, :4]
    y = cm.conv2plus1d(x, ws, wt, bs, bt, padding=1, relu=True)
    dout = RNG.normal(size=y.shape)
    dx, dws, dwt, dbs, dbt = cm.conv2plus1d_backward(dout, x, ws, wt, bs, padding=1, relu=True)
    f = cm.conv2plus1d
    assert_gradient(dx, lambda v: f(v, ws, wt, bs, bt, padding=1, relu=True), x, dout, bound=1e-5, what="dx")
    assert_gradient(dws, lambda v: f(x, v, wt, bs, bt, padding=1, relu=True), ws, dout, bound=1e-5, what="dws")
    assert_gradient(dwt, lambda v: f(x, ws, v, bs, bt, padding=1, relu=True), wt, dout, bound=1e-5, what="dwt")


@pytest.mark.parametrize("c_in, c_out, t, k", [(3, 8, 3, 3), (64, 64, 3, 3), (16, 32, 5, 3), (4, 6, 3, (3, 5))])
def test_conv3d_and_2plus1d_params_vs_torch_and_matching_m(c_in, c_out, t, k):
    """Counts == torch numel; M matches the 3D weight count: P(M) <= P3D < P(M + 1) (no biases)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    m = cm.conv2plus1d_matching_channels(c_in, c_out, t, k)
    numel = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    c3 = torch.nn.Conv3d(c_in, c_out, (t, kh, kw))
    sp = torch.nn.Conv3d(c_in, m, (1, kh, kw))
    tp = torch.nn.Conv3d(m, c_out, (t, 1, 1))
    assert cm.conv3d_params(c_in, c_out, t, k) == numel(c3)
    assert cm.conv2plus1d_params(c_in, c_out, t, k, m) == numel(sp) + numel(tp)
    p3 = cm.conv3d_params(c_in, c_out, t, k, bias=False)
    assert p3 == t * kh * kw * c_in * c_out
    assert cm.conv2plus1d_params(c_in, c_out, t, k, m, bias=False) <= p3
    assert cm.conv2plus1d_params(c_in, c_out, t, k, m + 1, bias=False) > p3


def test_conv3d_and_2plus1d_macs_vs_brute_force():
    c_in, c_out, t, k, m = 2, 3, 3, 3, 4
    shape = (c_in, 5, 6, 7)
    s, p = (2, 1, 2), (1, 1, 0)
    full = [(1, 1), (1, 1), (0, 0)]
    assert cm.conv3d_macs(shape, c_out, t, k, s, p) == _brute_macs(shape, (c_out, c_in, t, k, k), stride=s,
                                                                   pads=full)
    spatial = _brute_macs(shape, (m, c_in, 1, k, k), stride=(1, 1, 2), pads=[(0, 0), (1, 1), (0, 0)])
    mid = cm.conv_output_shape(shape, m, (1, k, k), (1, 1, 2), ((0, 0), (1, 1), (0, 0)))
    temporal = _brute_macs(mid, (c_out, m, t, 1, 1), stride=(2, 1, 1), pads=[(1, 1), (0, 0), (0, 0)])
    assert cm.conv2plus1d_macs(shape, c_out, t, k, m, s, p) == spatial + temporal


def test_errors_name_argument_and_value():
    x = np.ones((1, 3, 5, 5))
    with pytest.raises(ValueError, match="not a multiple of the input channels C_in=3"):
        cm.depthwise_separable_conv(x, np.ones((4, 1, 3, 3)), np.ones((2, 4, 1, 1)))
    with pytest.raises(ValueError, match=r"w_pointwise must have shape \(C_out, C_in \* M = 3"):
        cm.depthwise_separable_conv(x, np.ones((3, 1, 3, 3)), np.ones((2, 4, 1, 1)))
    with pytest.raises(ValueError, match=r"w_spatial must have shape \(M, C_in, 1, k_h, k_w\)"):
        cm.conv2plus1d(np.ones((1, 2, 4, 4, 4)), np.ones((3, 2, 2, 3, 3)), np.ones((2, 3, 2, 1, 1)))
    with pytest.raises(ValueError, match="w_temporal expects 4 intermediate channels but w_spatial produces M=3"):
        cm.conv2plus1d(np.ones((1, 2, 4, 4, 4)), np.ones((3, 2, 1, 3, 3)), np.ones((2, 4, 2, 1, 1)))
    with pytest.raises(ValueError, match="depth_multiplier must be a positive int, got 0"):
        cm.depthwise_separable_params(3, 4, 3, depth_multiplier=0)
    with pytest.raises(ValueError, match="c_out must be a positive int, got 0"):
        cm.separable_cost_ratio(0, 3)


def test_inputs_are_not_mutated_and_float32_stays_float32():
    x, wd, wp, bd, bp = (a.astype(np.float32) for a in _sep_arrays(2, 2, 3, 1, 3, True))
    copies = [a.copy() for a in (x, wd, wp, bd, bp)]
    y = cm.depthwise_separable_conv(x, wd, wp, bd, bp, padding=1)
    grads = cm.depthwise_separable_conv_backward(np.ones_like(y), x, wd, wp, bd, padding=1)
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    for a, c in zip((x, wd, wp, bd, bp), copies):
        np.testing.assert_array_equal(a, c)


def test_docstring_examples():
    """The examples in cnnmath.efficient's docstrings run and print what they claim."""
    import doctest

    import cnnmath.efficient

    result = doctest.testmod(cnnmath.efficient, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
