"""cnnmath.nn: seed 003's 4x4 worked example exactly, activations/losses/dense against
centred differences and PyTorch, and a whole small network against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnmath as cm
from tests.helpers import assert_array_close, assert_gradient, per_test_rng, to_torch

RNG = np.random.default_rng(3)

_fresh_rng = per_test_rng(globals())  # each test draws from its own generator, seeded by its name


# ------------------------------------------------------------------------------------------
# Seed 003, section II: the 4x4 example, number by number
# ------------------------------------------------------------------------------------------

def seed_arrays():
    """The seed's X, K, w, b_fc, t, alpha, typed in from seed 003 section II."""
    X = np.array([[2, 0, 1, 2], [1, 1, 0, 1], [0, 2, 1, 0], [1, 0, 2, 1]], dtype=np.float64)
    K = np.array([[1, -1, 0], [0, 1, -1], [1, 0, 1]], dtype=np.float64)
    w = np.array([0.2, -0.5, 0.4, 0.1])
    return X, K, w, 0.2, 0.0, 0.1


def seed_network():
    X, K, w, b_fc, _, _ = seed_arrays()
    net = cm.Sequential([
        cm.Conv.from_weights(K[None, None], trainable=False),  # the seed never updates K
        cm.ReLU(),
        cm.Flatten(),
        cm.Dense.from_weights(w[None, :], [b_fc]),
    ])
    return net, X[None, None]


def test_seed_003_forward_pass():
    """Z = [[4, 0], [4, 3]], ReLU leaves it unchanged, p = [4, 0, 4, 3], yhat = 2.9, L = 4.205."""
    net, x = seed_network()
    yhat = net.forward(x)
    conv, relu, flat, _ = net.layers
    z = cm.conv(x, conv.weight)
    assert_array_close(z[0, 0], np.array([[4.0, 0.0], [4.0, 3.0]]), rtol=0, atol=1e-12, what="Z")
    assert_array_close(cm.relu(z), z, rtol=0, atol=0, what="ReLU(Z)")
    assert_array_close(cm.flatten(z)[0], np.array([4.0, 0.0, 4.0, 3.0]), rtol=0, atol=0, what="p")
    assert_array_close(yhat, np.array([[2.9]]), rtol=0, atol=1e-12, what="yhat")
    assert cm.mse_loss(yhat, 0.0) == pytest.approx(0.5 * 2.9 ** 2, abs=1e-12)


def test_seed_003_backward_and_sgd_step():
    """dL/dyhat = 2.9, dL/dw = [11.6, 0, 11.6, 8.7], dL/db = 2.9, w_new, b_new = -0.09; K unchanged."""
    X, K, w, b_fc, t, lr = seed_arrays()
    net, x = seed_network()
    yhat = net.forward(x)
    dy = cm.mse_loss_backward(yhat, t)
    assert_array_close(dy, np.array([[2.9]]), rtol=0, atol=1e-12, what="dL/dyhat")
    net.backward(dy)
    g = net.grads()
    assert_array_close(g["3.weight"], np.array([[11.6, 0.0, 11.6, 8.7]]), rtol=0, atol=1e-12, what="dL/dw")
    assert_array_close(g["3.bias"], np.array([2.9]), rtol=0, atol=1e-12, what="dL/db_fc")
    # dL/dK is exposed although the seed does not use it: correlation of X with dL/dZ (eq. 9.11).
    dz = 2.9 * w.reshape(2, 2) * (np.array([[4.0, 0.0], [4.0, 3.0]]) > 0)
    dk = np.array([[np.sum(X[m:m + 2, n:n + 2] * dz) for n in range(3)] for m in range(3)])
    assert_array_close(g["0.weight"][0, 0], dk, rtol=0, atol=1e-12, what="dL/dK")
    assert "0.weight" not in net.grads(trainable_only=True)

    cm.sgd_step(net, lr)
    p = net.params()
    assert_array_close(p["3.weight"], np.array([[-0.96, -0.5, -0.76, -0.77]]), rtol=0, atol=1e-12, what="w_new")
    assert_array_close(p["3.bias"], np.array([-0.09]), rtol=0, atol=1e-12, what="b_new")
    assert_array_close(p["0.weight"][0, 0], K, rtol=0, atol=0, what="K (frozen, as in the seed)")
    # The caller's arrays are never mutated.
    assert_array_close(w, np.array([0.2, -0.5, 0.4, 0.1]), rtol=0, atol=0, what="caller's w")


def test_seed_003_matches_torch_autograd_including_dK():
    """The same network in torch gives yhat, dL/dw, dL/db and dL/dK."""
    X, K, w, b_fc, t, _ = seed_arrays()
    net, x = seed_network()
    yhat = net.forward(x)
    net.backward(cm.mse_loss_backward(yhat, t))
    xt = to_torch(x)
    kt = to_torch(K[None, None]).requires_grad_(True)
    wt = to_torch(w[None]).requires_grad_(True)
    bt = torch.tensor([b_fc], dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.linear(torch.relu(torch.nn.functional.conv2d(xt, kt)).flatten(1), wt, bt)
    loss = 0.5 * ((yt - t) ** 2).sum()
    loss.backward()
    g = net.grads()
    assert_array_close(yhat, yt.detach().numpy(), what="yhat")
    assert_array_close(g["0.weight"], kt.grad.numpy(), what="dL/dK")
    assert_array_close(g["3.weight"], wt.grad.numpy(), what="dL/dw")
    assert_array_close(g["3.bias"], bt.grad.numpy(), what="dL/db")


# ------------------------------------------------------------------------------------------
# Activations
# ------------------------------------------------------------------------------------------

ACTIVATIONS = [
    (cm.relu, cm.relu_backward, torch.relu),
    (cm.sigmoid, cm.sigmoid_backward, torch.sigmoid),
]


@pytest.mark.parametrize("f, fb, tf", ACTIVATIONS, ids=["relu", "sigmoid"])
def test_elementwise_activation_forward_backward_vs_torch(f, fb, tf):
    """Forward and dx (with an upstream gradient) equal torch autograd; float32 stays float32."""
    x = RNG.normal(size=(2, 3, 4, 5))
    x[0, 0, 0, :2] = 0.0  # ReLU's kink: both give 0
    dout = RNG.normal(size=x.shape)
    xt = to_torch(x).requires_grad_(True)
    yt = tf(xt)
    yt.backward(to_torch(dout))
    assert_array_close(f(x), yt.detach().numpy(), what=f"{f.__name__}(x)")
    assert_array_close(fb(dout, x), xt.grad.numpy(), what=f"{f.__name__} dx")
    assert f(x.astype(np.float32)).dtype == np.float32
    assert fb(dout.astype(np.float32), x.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("f, fb", [(cm.relu, cm.relu_backward), (cm.sigmoid, cm.sigmoid_backward)],
                         ids=["relu", "sigmoid"])
def test_elementwise_activation_gradient_check(f, fb):
    """Centred differences (float64) with an upstream gradient; ReLU inputs kept off the kink."""
    x = RNG.normal(size=(3, 7))
    x[np.abs(x) < 1e-3] = 0.5
    dout = RNG.normal(size=x.shape)
    assert_gradient(fb(dout, x), f, x, dout, bound=1e-6, what=f"{f.__name__} dx")


def test_sigmoid_is_stable_at_extremes():
    """No overflow warnings; the limits are exact."""
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with np.errstate(over="raise"):
        y = cm.sigmoid(x)
    assert y[0] == 0.0 and y[2] == 0.5 and y[-1] == 1.0
    assert_array_close(y, torch.sigmoid(to_torch(x)).numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_forward_backward_vs_torch_and_gradient_check(axis):
    """softmax sums to 1 along the axis, equals torch, and its backward passes the gradient check."""
    x = RNG.normal(size=(3, 4, 5))
    dout = RNG.normal(size=x.shape)
    y = cm.softmax(x, axis)
    assert_array_close(y.sum(axis=axis), np.ones(np.delete(x.shape, axis % 3)), what="softmax sums")
    xt = to_torch(x).requires_grad_(True)
    yt = torch.softmax(xt, dim=axis)
    yt.backward(to_torch(dout))
    assert_array_close(y, yt.detach().numpy(), what="softmax")
    dx = cm.softmax_backward(dout, x, axis)
    assert_array_close(dx, xt.grad.numpy(), what="softmax dx")
    assert_gradient(dx, lambda v: cm.softmax(v, axis), x, dout, bound=1e-6, what="softmax dx")
    assert_array_close(cm.log_softmax(x, axis), torch.log_softmax(to_torch(x), dim=axis).numpy(),
                       what="log_softmax")


def test_softmax_is_stable_for_huge_scores():
    """Shift invariance: softmax(x + 1000) == softmax(x), no overflow."""
    x = RNG.normal(size=(2, 6))
    with np.errstate(over="raise", invalid="raise"):
        assert_array_close(cm.softmax(x + 1000.0), cm.softmax(x), rtol=1e-12, what="shifted softmax")


# ------------------------------------------------------------------------------------------
# Losses
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["half_sum", "sum", "mean"])
def test_mse_loss_and_gradient_vs_torch(reduction):
    """mean == torch MSELoss(); sum == MSELoss(reduction='sum'); half_sum == seed's 1/2 sum."""
    yhat = RNG.normal(size=(4, 3))
    t = RNG.normal(size=(4, 3))
    yt = to_torch(yhat).requires_grad_(True)
    torch_red = "sum" if reduction == "half_sum" else reduction
    lt = torch.nn.MSELoss(reduction=torch_red)(yt, to_torch(t))
    if reduction == "half_sum":
        lt = 0.5 * lt
    lt.backward(torch.tensor(1.7, dtype=torch.float64))
    assert cm.mse_loss(yhat, t, reduction) == pytest.approx(lt.item(), rel=1e-12)
    g = cm.mse_loss_backward(yhat, t, reduction, dout=1.7)
    assert_array_close(g, yt.grad.numpy(), what=f"mse {reduction} gradient")
    assert_gradient(g, lambda v: np.array(cm.mse_loss(v, t, reduction)), yhat, np.array(1.7), bound=1e-5,
                    what=f"mse {reduction} gradient")


def test_mse_default_is_the_seed_half_sum():
    """Seed 003: L = 1/2 (2.9 - 0)^2 and dL/dyhat = 2.9."""
    assert cm.mse_loss([2.9], [0.0]) == pytest.approx(4.205, abs=1e-12)
    assert cm.mse_loss_backward([2.9], [0.0])[0] == pytest.approx(2.9, abs=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("target", ["indices", "probabilities"])
def test_cross_entropy_from_logits_vs_torch(reduction, target):
    """Equals torch.nn.CrossEntropyLoss for class indices and soft targets, value and gradient."""
    z = RNG.normal(size=(5, 4)) * 2
    if target == "indices":
        t = RNG.integers(0, 4, size=5)
        tt = torch.from_numpy(t)
    else:
        t = cm.softmax(RNG.normal(size=(5, 4)))
        tt = to_torch(t)
    zt = to_torch(z).requires_grad_(True)
    lt = torch.nn.CrossEntropyLoss(reduction=reduction)(zt, tt)
    lt.backward()
    assert cm.cross_entropy_from_logits(z, t, reduction=reduction) == pytest.approx(lt.item(), rel=1e-12)
    g = cm.cross_entropy_from_logits_backward(z, t, reduction=reduction)
    assert_array_close(g, zt.grad.numpy(), what="CE from logits gradient")
    assert_gradient(g, lambda v: np.array(cm.cross_entropy_from_logits(v, t, reduction=reduction)), z,
                    np.array(1.0), bound=1e-5, what="CE from logits gradient")


def test_cross_entropy_from_logits_class_axis_1_vs_torch():
    """(N, C, H, W) scores with class axis 1, like torch's segmentation-style CrossEntropyLoss."""
    z = RNG.normal(size=(2, 3, 2, 2))
    t = RNG.integers(0, 3, size=(2, 2, 2))
    lt = torch.nn.CrossEntropyLoss()(to_torch(z), torch.from_numpy(t))
    assert cm.cross_entropy_from_logits(z, t, axis=1, reduction="mean") == pytest.approx(lt.item(), rel=1e-12)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_cross_entropy_from_probabilities_matches_seed_formula_and_gradient(reduction):
    """L = -sum t log yhat (seed 003); equals the logits version on softmax outputs; gradient checks."""
    z = RNG.normal(size=(3, 5))
    p = cm.softmax(z)
    t = np.eye(5)[[1, 4, 0]]
    expected = -np.sum(t * np.log(p)) / (3 if reduction == "mean" else 1)
    assert cm.cross_entropy(p, t, reduction=reduction) == pytest.approx(expected, rel=1e-13)
    assert cm.cross_entropy(p, np.array([1, 4, 0]), reduction=reduction) == pytest.approx(expected, rel=1e-13)
    assert cm.cross_entropy_from_logits(z, t, reduction=reduction) == pytest.approx(expected, rel=1e-12)
    dout = 0.7
    g = cm.cross_entropy_backward(p, t, reduction=reduction, dout=dout)
    assert_gradient(g, lambda v: np.array(cm.cross_entropy(v, t, reduction=reduction)), p, np.array(dout),
                    bound=1e-5, what="CE gradient")
    # Chain rule through softmax gives softmax(z) - t.
    chained = cm.softmax_backward(g, z)
    assert_array_close(chained, dout * (p - t) / (3 if reduction == "mean" else 1), what="softmax + CE")


def test_cross_entropy_of_zero_probability_is_inf():
    """No silent clipping: a true class with probability 0 costs infinity."""
    assert cm.cross_entropy([0.0, 1.0], [1.0, 0.0]) == np.inf
    assert cm.cross_entropy([0.0, 1.0], [0.0, 1.0]) == 0.0


# ------------------------------------------------------------------------------------------
# Dense and flatten
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_shape", [(), (4,), (2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_vs_torch_linear_and_gradient_check(batch_shape, bias):
    """dense == F.linear; dx, dW, db equal torch autograd and centred differences."""
    x = RNG.normal(size=batch_shape + (5,))
    w = RNG.normal(size=(3, 5))
    b = RNG.normal(size=3) if bias else None
    dout = RNG.normal(size=batch_shape + (3,))
    xt, wt = to_torch(x).requires_grad_(True), to_torch(w).requires_grad_(True)
    bt = to_torch(b).requires_grad_(True) if bias else None
    yt = torch.nn.functional.linear(xt, wt, bt)
    yt.backward(to_torch(dout))
    assert_array_close(cm.dense(x, w, b), yt.detach().numpy(), what="dense")
    dx, dw, db = cm.dense_backward(dout, x, w)
    assert_array_close(dx, xt.grad.numpy(), what="dense dx")
    assert_array_close(dw, wt.grad.numpy(), what="dense dw")
    if bias:
        assert_array_close(db, bt.grad.numpy(), what="dense db")
    assert_gradient(dx, lambda v: cm.dense(v, w, b), x, dout, what="dense dx")
    assert_gradient(dw, lambda v: cm.dense(x, v, b), w, dout, what="dense dw")
    if bias:
        assert_gradient(db, lambda v: cm.dense(x, w, v), b, dout, what="dense db")


def test_flatten_round_trip_matches_torch_order():
    x = RNG.normal(size=(2, 3, 4, 5))
    assert_array_close(cm.flatten(x), torch.flatten(to_torch(x), 1).numpy(), what="flatten")
    d = RNG.normal(size=(2, 60))
    assert_array_close(cm.flatten_backward(d, x.shape), d.reshape(x.shape), what="flatten backward")


# ------------------------------------------------------------------------------------------
# A whole network against torch autograd
# ------------------------------------------------------------------------------------------

def _torch_twin(net, x):
    """Run the same parameters through torch.nn.functional; return output and named grads."""
    F = torch.nn.functional
    params = {k: to_torch(v).requires_grad_(True) for k, v in net.params().items()}
    h = to_torch(x)
    for i, layer in enumerate(net.layers):
        if isinstance(layer, cm.Conv):
            h = F.conv2d(h, params[f"{i}.weight"], params.get(f"{i}.bias"), layer.stride, layer.padding,
                         layer.dilation, layer.groups)
        elif isinstance(layer, cm.ReLU):
            h = torch.relu(h)
        elif isinstance(layer, cm.Sigmoid):
            h = torch.sigmoid(h)
        elif isinstance(layer, cm.MaxPool):
            h = F.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, cm.AvgPool):
            h = F.avg_pool2d(h, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, cm.Flatten):
            h = h.flatten(1)
        elif isinstance(layer, cm.Dense):
            h = F.linear(h, params[f"{i}.weight"], params.get(f"{i}.bias"))
        else:  # pragma: no cover
            raise AssertionError(layer)
    return h, params


def test_small_cnn_forward_backward_and_step_vs_torch():
    """Conv-ReLU-MaxPool-Conv-Sigmoid-AvgPool-Flatten-Dense + softmax CE: every gradient and the SGD step."""
    net = cm.Sequential([cm.Conv(4, 3, padding=1), cm.ReLU(), cm.MaxPool(2), cm.Conv(6, 3, stride=1, padding="valid"),
                         cm.Sigmoid(), cm.AvgPool(2), cm.Flatten(), cm.Dense(3)], rng=11)
    x = RNG.normal(size=(2, 2, 10, 10))
    t = np.array([0, 2])
    z = net.forward(x)
    net.backward(cm.cross_entropy_from_logits_backward(z, t, reduction="mean"))
    zt, params = _torch_twin(net, x)
    torch.nn.CrossEntropyLoss()(zt, torch.from_numpy(t)).backward()
    assert_array_close(z, zt.detach().numpy(), what="network output")
    grads = net.grads()
    assert set(grads) == set(params) == {"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"}
    for k, p in params.items():
        assert_array_close(grads[k], p.grad.numpy(), rtol=1e-7, atol=1e-10, what=f"grad {k}")
    before = {k: v.copy() for k, v in net.params().items()}
    cm.sgd_step(net, 0.05)
    for k, v in net.params().items():
        assert_array_close(v, before[k] - 0.05 * params[k].grad.numpy(), what=f"updated {k}")


def test_network_input_gradient_check():
    """dL/dx of a whole network against centred differences (smooth layers only)."""
    net = cm.Sequential([cm.Conv(2, 2, stride=2), cm.Sigmoid(), cm.AvgPool(2, stride=1), cm.Flatten(),
                         cm.Dense(2)], rng=5)
    x = RNG.normal(size=(1, 1, 6, 6))
    dout = RNG.normal(size=(1, 2))
    net.forward(x)
    dx = net.backward(dout)
    assert_gradient(dx, net.forward, x, dout, bound=1e-5, what="network dx")


def test_training_reduces_the_loss():
    """A few SGD steps on a fixed batch lower the cross-entropy (the machinery learns)."""
    net = cm.Sequential([cm.Conv(3, 3), cm.ReLU(), cm.Flatten(), cm.Dense(2)], rng=0)
    x = RNG.normal(size=(8, 1, 5, 5))
    t = (x[:, 0, 2, 2] > 0).astype(int)
    losses = []
    for _ in range(30):
        z = net.forward(x)
        losses.append(cm.cross_entropy_from_logits(z, t, reduction="mean"))
        net.backward(cm.cross_entropy_from_logits_backward(z, t, reduction="mean"))
        cm.sgd_step(net, 0.1)
    assert losses[-1] < 0.7 * losses[0], losses


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------

def test_errors_name_argument_and_value():
    with pytest.raises(ValueError, match="reduction must be one of .*'mean'.* got 'avg'"):
        cm.mse_loss([1.0], [0.0], reduction="avg")
    with pytest.raises(ValueError, match=r"x has 4 features .* N_in=5"):
        cm.dense(np.ones((2, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"b must have shape \(N_out,\) = \(3,\), got \(2,\)"):
        cm.dense(np.ones((2, 5)), np.ones((3, 5)), np.ones(2))
    with pytest.raises(ValueError, match="axis must be an int in"):
        cm.softmax(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match="class indices .* got min 0, max 3"):
        cm.cross_entropy_from_logits(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="dout must have the shape of x"):
        cm.relu_backward(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        cm.relu(np.array(["a"]))
    with pytest.raises(ValueError, match="lr must be a positive number, got -0.1"):
        cm.sgd_step(cm.Sequential([cm.ReLU()]), -0.1)
    with pytest.raises(ValueError, match="out_channels must be a positive int, got 0"):
        cm.Conv(0, 3)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        cm.ReLU().backward(np.ones(2))
    with pytest.raises(ValueError, match="Dense expects a flat input"):
        cm.Sequential([cm.Dense(2)]).forward(np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="does not fit an input with 3 channels"):
        cm.Sequential([cm.Conv.from_weights(np.ones((1, 2, 3, 3)))]).forward(np.ones((1, 3, 5, 5)))


def test_inputs_are_never_mutated_and_float32_stays_float32():
    """Every function leaves its arguments untouched; float32 in gives float32 out."""
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    w = RNG.normal(size=(2, 4)).astype(np.float32)
    b = RNG.normal(size=2).astype(np.float32)
    t = np.array([0, 1, 1])
    dout = RNG.normal(size=(3, 2)).astype(np.float32)
    copies = [a.copy() for a in (x, w, b, t, dout)]
    outs = [cm.relu(x), cm.sigmoid(x), cm.softmax(x), cm.log_softmax(x), cm.dense(x, w, b),
            *cm.dense_backward(dout, x, w), cm.relu_backward(x, x), cm.sigmoid_backward(x, x),
            cm.softmax_backward(x, x), cm.mse_loss_backward(x, x[::-1]),
            cm.cross_entropy_from_logits_backward(cm.dense(x, w, b), t),
            cm.cross_entropy_backward(cm.softmax(dout), t), cm.flatten(x)]
    for name, a, c in zip("x w b t dout".split(), (x, w, b, t, dout), copies):
        np.testing.assert_array_equal(a, c, err_msg=f"{name} was mutated")
    for i, o in enumerate(outs):
        assert o.dtype == np.float32, f"output {i}: dtype {o.dtype} != float32"


def test_layers_copy_their_weights():
    """A layer built from an array owns a copy: SGD never writes into the caller's array."""
    w = np.ones((1, 3))
    net = cm.Sequential([cm.Dense.from_weights(w, np.zeros(1))])
    y = net.forward(np.ones((1, 3)))
    net.backward(np.ones_like(y))
    cm.sgd_step(net, 0.5)
    np.testing.assert_array_equal(w, np.ones((1, 3)))
    np.testing.assert_array_equal(net.params()["0.weight"], np.full((1, 3), 0.5))


def test_docstring_examples():
    """The examples in cnnmath.nn's docstrings run and print what they claim."""
    import doctest

    import importlib

    attempted = 0
    for name in ("functional", "losses", "layers", "model"):
        module = importlib.import_module(f"cnnmath.nn.{name}")
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, f"cnnmath.nn.{name}: {result.failed} docstring examples failed"
        attempted += result.attempted
    assert attempted > 0


def test_nn_package_keeps_the_public_api():
    """cnnmath.nn is a package (functional, losses, layers, model) whose names are the old module's,
    all importable from cnnmath.nn and from cnnmath, each defined in exactly one submodule."""
    import importlib

    import cnnmath
    import cnnmath.nn as nn

    names = ["relu", "relu_backward", "sigmoid", "sigmoid_backward", "softmax", "softmax_backward", "log_softmax",
             "mse_loss", "mse_loss_backward", "cross_entropy", "cross_entropy_backward", "cross_entropy_from_logits",
             "cross_entropy_from_logits_backward", "dense", "dense_backward", "flatten", "flatten_backward", "Layer",
             "Conv", "ReLU", "Sigmoid", "Softmax", "MaxPool", "AvgPool", "Flatten", "Dense", "Sequential", "sgd_step"]
    assert sorted(nn.__all__) == sorted(names)
    homes = {}
    for sub in ("functional", "losses", "layers", "model"):
        module = importlib.import_module(f"cnnmath.nn.{sub}")
        for name in module.__all__:
            assert name not in homes, f"{name} exported by both cnnmath.nn.{homes[name]} and cnnmath.nn.{sub}"
            homes[name] = sub
            assert getattr(nn, name) is getattr(module, name) is getattr(cnnmath, name)
            assert getattr(module, name).__doc__, f"cnnmath.nn.{sub}.{name} lost its docstring"
    assert set(homes) == set(names)
