"""course_grader.misconceptions: a wrong answer is matched to the cnnmath variant that explains it.

Unit tests on plain data (no sandbox): each student mistake is simulated by a hand-written
NumPy loop that makes it (independent of the variants the module computes with cnnmath), and
the diagnosis must name exactly that mistake; correct answers and unrelated wrong answers are
never diagnosed. The end-to-end version (real notebooks, feedback HTML, class report) is in
tests/test_grader_corpus.py.
"""
import numpy as np
import pytest

import cnnmath
from course_grader.misconceptions import SENTENCES, diagnose, diagnose_calls
from course_grader.runner import explain_failure

RNG = np.random.default_rng(1234)


def loop_conv2d(x, w, b=None, stride=1, padding=0, flip=False, w_layout="oc", channels_last_out=False,
                size_offset=0):
    """A plain loop conv2d that can make the classic mistakes on purpose."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = xp.shape
    if w_layout == "co":
        w = np.swapaxes(w, 0, 1)
    o, _, kh, kw = w.shape
    ho, wo = (h - kh) // stride + 1 + size_offset, (wd - kw) // stride + 1 + size_offset
    z = np.zeros((n, o, ho, wo))
    for a in range(n):
        for f in range(o):
            for y in range(ho):
                for q in range(wo):
                    win = xp[a, :, y * stride:y * stride + kh, q * stride:q * stride + kw]
                    if win.shape[1:] != (kh, kw):
                        continue
                    k = w[f, :, ::-1, ::-1] if flip else w[f]
                    z[a, f, y, q] = np.sum(win * k) + (0 if b is None else b[f])
    return z.transpose(0, 2, 3, 1) if channels_last_out else z


def test_loop_conv2d_is_right_when_it_makes_no_mistake():
    x, w, b = RNG.standard_normal((2, 3, 7, 6)), RNG.standard_normal((4, 3, 3, 2)), RNG.standard_normal(4)
    np.testing.assert_allclose(loop_conv2d(x, w, b, stride=2, padding=1),
                               cnnmath.conv2d(x, w, b, stride=2, padding=1), atol=1e-12)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 2), (3, 2)])
def test_conv2d_mistakes_are_named(stride, padding):
    x, w, b = RNG.standard_normal((2, 3, 8, 7)), RNG.standard_normal((3, 3, 3, 3)), RNG.standard_normal(3)
    args, kw = (x, w, b), dict(stride=stride, padding=padding)
    assert diagnose("conv2d", args, kw, loop_conv2d(x, w, b, **kw)) is None
    assert diagnose("conv2d", args, kw, loop_conv2d(x, w, b, flip=True, **kw)) == "flipped_kernel"
    assert diagnose("conv2d", args, kw, loop_conv2d(x, w, b, stride=stride, padding=0)) == "padding_forgotten"
    assert diagnose("conv2d", args, kw, loop_conv2d(x, w, b, stride=stride, padding=2 * padding)) == "padding_doubled"
    assert diagnose("conv2d", args, kw, loop_conv2d(x, w, b, w_layout="co", **kw)) == "weights_transposed"
    assert diagnose("conv2d", args, kw, loop_conv2d(x, w, b, channels_last_out=True, **kw)) == "channels_last"
    assert diagnose("conv2d", args, kw, loop_conv2d(x, w, b, size_offset=-1, **kw)) == "output_size_off_by_one"
    # unrelated wrong answers are not explained
    assert diagnose("conv2d", args, kw, np.zeros_like(loop_conv2d(x, w, b, **kw))) is None
    assert diagnose("conv2d", args, kw, "not an array") is None


def test_channels_last_input_is_named():
    # x is channels-first (N, C=2, H=5, W=2); the student reads it as (N, H=2, W=5, C=2)
    x, w = RNG.standard_normal((1, 2, 5, 2)), RNG.standard_normal((3, 2, 2, 2))
    got = loop_conv2d(x.transpose(0, 3, 1, 2), w).transpose(0, 2, 3, 1)
    assert got.shape == (1, 1, 4, 3)
    assert diagnose("conv2d_forward", (x, w), {}, got) == "channels_last"


def loop_grad_weight(dout, x, ksize, stride, padding, ignore_stride=False):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    s = 1 if ignore_stride else stride
    dw = np.zeros((dout.shape[1], x.shape[1]) + ksize)
    for n, o, y, q in np.ndindex(*dout.shape):
        dw[o] += dout[n, o, y, q] * xp[n, :, y * s:y * s + ksize[0], q * s:q * s + ksize[1]]
    return dw


def loop_grad_input(dout, w, x_shape, stride, padding, ignore_stride=False, flip=False):
    n_, c, h, wd = x_shape
    kh, kw = w.shape[2:]
    s = 1 if ignore_stride else stride
    dxp = np.zeros((n_, c, h + 2 * padding, wd + 2 * padding))
    k = w[:, :, ::-1, ::-1] if flip else w
    for n, o, y, q in np.ndindex(*dout.shape):
        dxp[n, :, y * s:y * s + kh, q * s:q * s + kw] += dout[n, o, y, q] * k[o]
    return dxp[:, :, padding:padding + h, padding:padding + wd]


@pytest.mark.parametrize("stride,padding", [(2, 0), (2, 1), (3, 1)])
def test_backward_mistakes_are_named(stride, padding):
    x, w = RNG.standard_normal((2, 2, 9, 8)), RNG.standard_normal((3, 2, 3, 2))
    dout = RNG.standard_normal(cnnmath.conv2d(x, w, stride=stride, padding=padding).shape)
    args = (dout, x, (3, 2))
    kw = dict(stride=stride, padding=padding)
    right = loop_grad_weight(dout, x, (3, 2), stride, padding)
    np.testing.assert_allclose(right, cnnmath.conv_backward(dout, x, w, **kw)[1], atol=1e-10)
    assert diagnose("conv2d_grad_weight", args, kw, right) is None
    assert diagnose("conv2d_grad_weight", args, kw,
                    loop_grad_weight(dout, x, (3, 2), stride, padding, ignore_stride=True)) == "stride_ignored_backward"
    iargs = (dout, w, x.shape)
    right = loop_grad_input(dout, w, x.shape, stride, padding)
    np.testing.assert_allclose(right, cnnmath.conv_backward(dout, x, w, **kw)[0], atol=1e-10)
    assert diagnose("conv2d_grad_input", iargs, kw, right) is None
    assert diagnose("conv2d_grad_input", iargs, kw,
                    loop_grad_input(dout, w, x.shape, stride, padding, ignore_stride=True)) == "stride_ignored_backward"
    assert diagnose("conv2d_grad_input", iargs, kw,
                    loop_grad_input(dout, w, x.shape, stride, padding, flip=True)) == "flipped_kernel"


def test_output_size_mistakes_are_named():
    def size(n, k, s, p, d):
        return (n + 2 * p - d * (k - 1) - 1) // s + 1
    args, kw = (16, 3), dict(stride=1, padding=1, dilation=1)
    assert diagnose("output_size", args, kw, size(16, 3, 1, 1, 1)) is None
    assert diagnose("output_size", args, kw, size(16, 3, 1, 0, 1)) == "padding_forgotten"
    assert diagnose("output_size", args, kw, size(16, 3, 1, 2, 1)) == "padding_doubled"
    assert diagnose("output_size", args, kw, size(16, 3, 1, 1, 1) - 1) == "output_size_off_by_one"
    assert diagnose("output_size", args, kw, 3) is None
    assert diagnose("output_shape_2d", ((10, 12), 3), dict(padding=1), (9, 11)) == "output_size_off_by_one"
    assert diagnose("output_shape_2d", ((10, 12), 3), dict(padding=1), (8, 10)) == "padding_forgotten"


def test_unknown_or_garbage_never_raises():
    assert diagnose("no_such_function", (1,), {}, 2) is None
    assert diagnose("conv2d", ("x", None), {}, np.zeros(3)) is None
    assert diagnose("conv2d", (), {"bogus": 1}, None) is None
    assert diagnose_calls([]) is None


def test_explain_failure_adds_one_sentence():
    x, w = RNG.standard_normal((1, 1, 5, 5)), RNG.standard_normal((1, 1, 3, 3))
    calls = [("conv2d", (x, w), {}, cnnmath.conv2d(x, w)),                    # right: skipped
             ("conv2d", (x, w), {}, cnnmath.conv2d(x, w[..., ::-1, ::-1]))]   # flipped
    result = {"passed": False, "message": "hidden test failed", "points": 0.0}
    explain_failure(result, calls)
    assert result["misconception"] == "flipped_kernel"
    assert result["message"] == "hidden test failed\nLikely misconception: " + SENTENCES["flipped_kernel"]
    passed = {"passed": True, "message": "", "points": 1.0}
    explain_failure(passed, calls)
    assert "misconception" not in passed


def reference_answer(assignment, grade_id):
    """The instructor's reference answer (source notebook) as code, without the solution markers."""
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "solutions" / assignment / f"{assignment}.ipynb"
    if not path.exists():
        pytest.skip(f"{path} does not exist yet")
    for cell in json.loads(path.read_text())["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(l for l in "".join(cell["source"]).splitlines(True) if "### " not in l)
    pytest.skip(f"{assignment} has no answer {grade_id}")


def student(assignment, grade_id, *edits):
    """The reference answer with the mistake made by text edits, as a function."""
    code = reference_answer(assignment, grade_id)
    for old, new in edits:
        assert old in code, f"{grade_id}: {old!r} not in the reference answer"
        code = code.replace(old, new)
    ns = {"np": np}
    exec(code, ns)
    return ns[grade_id]


@pytest.mark.parametrize("kind", ["max_pool2d", "avg_pool2d"])
def test_pooling_mistakes_are_named(kind):
    pad = "((0, 0), (0, 0), (padding, padding), (padding, padding))"
    right = student("pooling", kind)
    x = RNG.standard_normal((2, 3, 9, 8))
    kw = dict(stride=2, padding=1)
    assert diagnose(kind, (x, 3), kw, right(x, 3, **kw)) is None
    assert diagnose(kind, (x, 3), kw, student("pooling", kind, (pad, "((0, 0),) * 4"))(x, 3, **kw)) \
        == "padding_forgotten"
    assert diagnose(kind, (x, 3), kw, np.transpose(right(x, 3, **kw), (0, 2, 3, 1))) == "channels_last"


def test_transposed_conv_mistakes_are_named():
    x, w, b = RNG.standard_normal((2, 3, 4, 5)), RNG.standard_normal((3, 3, 3, 2)), RNG.standard_normal(3)
    kw = dict(stride=2, padding=1)
    right = student("conv_transpose", "conv_transpose2d")
    assert diagnose("conv_transpose2d", (x, w, b), kw, right(x, w, b, **kw)) is None
    flipped = student("conv_transpose", "conv_transpose2d", ("w[:, :, i, j]", "w[:, :, -1 - i, -1 - j]"))
    assert diagnose("conv_transpose2d", (x, w, b), kw, flipped(x, w, b, **kw)) == "flipped_kernel"
    swapped = student("conv_transpose", "conv_transpose2d", ('"nchw,co->nohw"', '"nchw,oc->nohw"'))
    assert diagnose("conv_transpose2d", (x, w, b), kw, swapped(x, w, b, **kw)) == "weights_transposed"
    uncropped = student("conv_transpose", "conv_transpose2d", ("y = full[:, :, p:p + h_out, p:p + w_out]", "y = full"))
    assert diagnose("conv_transpose2d", (x, w, b), kw, uncropped(x, w, b, **kw)) == "padding_forgotten"
    assert diagnose("transposed_output_size", (4, 3), dict(stride=2, padding=1), 9) == "padding_forgotten"
    assert diagnose("transposed_output_size", (4, 3), dict(stride=2, padding=1), 6) == "output_size_off_by_one"


def test_conv1d_mistakes_are_named():
    x, w, b = RNG.standard_normal((2, 2, 11)), RNG.standard_normal((2, 2, 3)), RNG.standard_normal(2)
    kw = dict(stride=2, padding=1)
    right = student("conv1d", "conv1d_layer")
    assert diagnose("conv1d_layer", (x, w, b), kw, right(x, w, b, **kw)) is None
    flipped = student("conv1d", "conv1d_layer", ("w[:, :, tau]", "w[:, :, k - 1 - tau]"))
    assert diagnose("conv1d_layer", (x, w, b), kw, flipped(x, w, b, **kw)) == "flipped_kernel"
    unpadded = student("conv1d", "conv1d_layer", ("((0, 0), (0, 0), (padding, padding))", "((0, 0),) * 3"))
    assert diagnose("conv1d_layer", (x, w, b), kw, unpadded(x, w, b, **kw)) == "padding_forgotten"
    signal, kernel = RNG.standard_normal(9), RNG.standard_normal(4)
    assert diagnose("cross_correlate1d", (signal, kernel), {}, np.convolve(signal, kernel, mode="valid")) \
        == "flipped_kernel"
    assert diagnose("cross_correlate1d", (signal, kernel), {}, np.correlate(signal, kernel, mode="valid")) is None


# -- derived formulas and the activations notebook (course_grader.formula_misconceptions) ------------
def test_formula_mistakes_are_named():
    """A SymPy answer (as rebuilt from the wire) is matched to the wrong formula it equals."""
    import sympy as sp
    from course_grader import wire

    n, k, s, p, d, a = sp.symbols("n k s p d a")

    def via_wire(expr):  # the grader sees the expression as rebuilt on the trusted side
        return wire.loads(wire.dumps(expr))

    right = sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1
    assert diagnose("output_size_formula", (), {}, via_wire(right)) is None
    assert diagnose("output_size_formula", (), {}, via_wire(sp.floor((n + 2 * p - d * k + d - 1 + s) / s))) is None
    cases = {"ceiling_for_floor": sp.ceiling((n + 2 * p - d * k + d - 1) / s) + 1,
             "output_size_off_by_one": sp.floor((n + 2 * p - d * (k - 1) - 1) / s),
             "dilation_ignored": sp.floor((n - k + 2 * p) / s) + 1,
             "padding_forgotten": sp.floor((n - d * (k - 1) - 1) / s) + 1}
    for key, wrong in cases.items():
        assert diagnose("output_size_formula", (), {}, via_wire(wrong)) == key, key
    assert diagnose("transposed_output_size_formula", (), {}, via_wire(n * s - 2 * p + k + a)) == "transposed_n_times_s"
    assert diagnose("transposed_output_size_formula", (), {}, via_wire((n - 1) * s + 2 * p + k + a)) == \
        "transposed_padding_added"
    g = {f"{i}{j}": sp.Symbol(f"g_{i}_{j}") for i in range(2) for j in range(2)}
    K = {f"{i}{j}": sp.Symbol(f"K_{i}_{j}") for i in range(3) for j in range(3)}
    unflipped = g["00"] * K["01"] + g["01"] * K["02"] + g["10"] * K["11"] + g["11"] * K["12"]
    flipped = g["00"] * K["12"] + g["01"] * K["11"] + g["10"] * K["02"] + g["11"] * K["01"]
    assert diagnose("input_gradient_entry", (), {}, via_wire(unflipped)) == "gradient_not_flipped"
    assert diagnose("input_gradient_entry", (), {}, via_wire(flipped)) is None
    # unrelated or untamed answers are not explained, and cost nothing
    assert diagnose("output_size_formula", (), {}, via_wire(n + k)) is None
    assert diagnose("output_size_formula", (), {}, 16.0) is None
    hostile = sp.Pow(2, sp.Pow(2, sp.Integer(10) ** 50, evaluate=False), evaluate=False) * n
    assert diagnose("output_size_formula", (), {}, via_wire(hostile)) is None


def test_activation_mistakes_are_named():
    x, dout = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    s = 1 / (1 + np.exp(-x))
    assert diagnose("sigmoid_backward", (dout, x), {}, dout * s * (1 - s)) is None
    assert diagnose("sigmoid_backward", (dout, x), {}, dout * s) == "sigmoid_derivative_incomplete"
    assert diagnose("sigmoid_backward", (dout, x), {}, dout * x * (1 - x)) == "sigmoid_derivative_of_input"
    z, t = RNG.standard_normal((2, 5)), np.eye(5)[[1, 3]]
    y = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert diagnose("cross_entropy_from_logits_backward", (z, t), {}, y - t) is None
    assert diagnose("cross_entropy_from_logits_backward", (z, t), {}, t - y) == "gradient_sign_flipped"
    img, grad = RNG.random((4, 4)), RNG.standard_normal((4, 4))
    assert diagnose("fgsm_step", (img, grad, 0.3), {}, np.clip(img + 0.3 * np.sign(grad), 0, 1)) is None
    assert diagnose("fgsm_step", (img, grad, 0.3), {}, np.clip(img - 0.3 * np.sign(grad), 0, 1)) == "fgsm_wrong_direction"
    assert diagnose("fgsm_step", (img, grad, 0.3), {}, img + 0.3 * np.sign(grad)) == "fgsm_not_clipped"
