"""Misconceptions of the activations_losses and derivations notebooks (merged into
:mod:`course_grader.misconceptions`, which runs them: same contract, plain data only).

Numeric parts (sigmoid, softmax, cross-entropy, FGSM) get ``cnnmath`` variants as elsewhere. A
derived formula arrives as a SymPy expression rebuilt by :mod:`course_grader.expressions`; it is
compared with each wrong formula at a few small integer points, and only when it is *tame* (few
nodes, powers with small integer or symbol exponents, no factorials or binomials, small numbers),
so this trusted-side evaluation is always cheap. The notebook's checker does the real grading
under its own time limit; this only names the mistake.
"""
import numpy as np

__all__ = ["FORMULA_DIAGNOSERS", "FORMULA_SENTENCES"]

FORMULA_SENTENCES = {
    "ceiling_for_floor": (
        "Your formula matches a ceiling where the floor belongs: a window position counts only if the whole "
        "window fits, so the number of strides that fit is rounded down, floor(... / s)."),
    "dilation_ignored": (
        "Your formula matches the kernel span taken as k: with dilation d a k-tap kernel spans d(k - 1) + 1 "
        "samples, so d(k - 1) + 1 replaces k in the output-size formula."),
    "transposed_n_times_s": (
        "Your formula matches n s: n inputs placed s apart span (n - 1) s + 1 samples, so the transposed "
        "size starts from (n - 1) s, then adds the kernel and output padding and removes 2p."),
    "transposed_padding_added": (
        "Your formula adds the padding: in a transposed convolution `padding` crops p samples from each "
        "side of the stamped result (it undoes the forward convolution's padding), so it enters as - 2p."),
    "gradient_not_flipped": (
        "Your gradient entry matches the kernel read without flipping: dL/dX[i, j] collects g[i - m, j - n] "
        "K[m, n], so the kernel index runs against the gradient index (a full convolution with the flipped "
        "kernel)."),
    "sigmoid_derivative_incomplete": (
        "Your sigmoid gradient matches dout * s: the derivative of s = sigmoid(x) is s (1 - s)."),
    "sigmoid_derivative_of_input": (
        "Your sigmoid gradient matches dout * x (1 - x): s (1 - s) is evaluated at s = sigmoid(x), "
        "not at the input x."),
    "gradient_sign_flipped": (
        "Your gradient has the wrong sign: dL/dz = softmax(z) * sum(t) - t (the prediction minus the target)."),
    "fgsm_wrong_direction": (
        "Your step goes down the gradient: FGSM increases the loss, x + eps * sign(dL/dx)."),
    "fgsm_not_clipped": (
        "Your step is not clipped: after x + eps * sign(dL/dx) the pixels must stay in [0, 1]."),
}

_SAFE = {"Symbol", "Integer", "Rational", "Add", "Mul", "Pow", "floor", "ceiling", "Max", "Min", "Abs", "Mod",
         "One", "Zero", "NegativeOne", "Half"}


def _tame(expr, max_nodes=300):
    import sympy
    if not isinstance(expr, sympy.Expr):
        return False
    for count, node in enumerate(sympy.preorder_traversal(expr)):
        if count > max_nodes or type(node).__name__ not in _SAFE and not node.is_Integer and not node.is_Rational:
            return False
        if node.is_Rational and (abs(node.p) > 10 ** 6 or node.q > 10 ** 6):
            return False
        if node.is_Pow and not (node.exp.is_Symbol or (node.exp.is_Integer and abs(node.exp) <= 4)):
            return False
    return True


def _formula(names, wrong_forms, points):
    """A diagnoser for a no-argument function returning a formula in ``names``."""
    def diagnoser():
        import sympy
        syms = {name: sympy.Symbol(name) for name in names}

        def matches(form):
            def predicate(got):
                if not _tame(got):
                    return False
                for point in points:
                    sub = {syms[k]: sympy.Integer(v) for k, v in zip(names, point)}
                    if sympy.simplify(got.xreplace(sub) - form(**syms).xreplace(sub)) != 0:
                        return False
                return True
            return predicate
        return "formula", [(key, matches(form)) for key, form in wrong_forms]
    return diagnoser


def _floor(x):
    import sympy
    return sympy.floor(x)


def _ceiling(x):
    import sympy
    return sympy.ceiling(x)


_OUT_POINTS = [(16, 3, 1, 1, 1), (16, 2, 2, 0, 1), (7, 3, 2, 0, 1), (10, 3, 3, 1, 1), (7, 3, 1, 0, 2), (20, 3, 2, 1, 3),
               (9, 2, 1, 0, 4), (11, 4, 3, 2, 2)]
_TR_POINTS = [(2, 3, 2, 0, 0), (4, 4, 2, 1, 0), (4, 3, 2, 1, 1), (5, 3, 3, 0, 2), (3, 3, 1, 1, 0)]
_MC_POINTS = [(3, 7, 3, 64), (3, 3, 16, 32), (2, 5, 7, 9), (5, 3, 11, 4)]


def _gradient_not_flipped(**s):
    return s["g_0_0"] * s["K_0_1"] + s["g_0_1"] * s["K_0_2"] + s["g_1_0"] * s["K_1_1"] + s["g_1_1"] * s["K_1_2"]


_GRAD_NAMES = tuple(f"K_{i}_{j}" for i in range(3) for j in range(3)) + tuple(f"g_{i}_{j}" for i in range(2) for j in range(2))
_GRAD_POINTS = [tuple(int(v) for v in np.random.default_rng(seed).integers(-9, 10, len(_GRAD_NAMES))) for seed in range(4)]


def _cnnmath():
    import cnnmath
    return cnnmath


def _sigmoid_backward(dout, x):
    cm = _cnnmath()
    dout, x = np.asarray(dout, dtype=np.float64), np.asarray(x, dtype=np.float64)
    s = cm.sigmoid(x)
    return cm.sigmoid_backward(dout, x), [("sigmoid_derivative_incomplete", lambda: dout * s),
                                         ("sigmoid_derivative_of_input", lambda: dout * x * (1 - x))]


def _ce_backward(z, t):
    cm = _cnnmath()
    z, t = np.asarray(z, dtype=np.float64), np.asarray(t, dtype=np.float64)
    ref = cm.cross_entropy_from_logits_backward(z, t)
    return ref, [("gradient_sign_flipped", lambda: -ref)]


def _fgsm(x, grad, eps):
    x, grad = np.asarray(x, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    step = float(eps) * np.sign(grad)
    return np.clip(x + step, 0, 1), [("fgsm_wrong_direction", lambda: np.clip(x - step, 0, 1)),
                                     ("fgsm_wrong_direction", lambda: x - step),
                                     ("fgsm_not_clipped", lambda: x + step)]


#: student function name -> a function of the same arguments returning (reference, variants)
FORMULA_DIAGNOSERS = {
    "output_size_formula": _formula("nkspd", [
        ("ceiling_for_floor", lambda n, k, s, p, d: _ceiling((n + 2 * p - d * (k - 1) - 1) / s) + 1),
        ("output_size_off_by_one", lambda n, k, s, p, d: _floor((n + 2 * p - d * (k - 1) - 1) / s)),
        ("output_size_off_by_one", lambda n, k, s, p, d: _floor((n + 2 * p - d * (k - 1) - 1) / s) + 2),
        ("dilation_ignored", lambda n, k, s, p, d: _floor((n + 2 * p - k) / s) + 1),
        ("padding_forgotten", lambda n, k, s, p, d: _floor((n - d * (k - 1) - 1) / s) + 1),
        ("padding_doubled", lambda n, k, s, p, d: _floor((n + 4 * p - d * (k - 1) - 1) / s) + 1),
    ], _OUT_POINTS),
    "transposed_output_size_formula": _formula("nkspa", [
        ("transposed_n_times_s", lambda n, k, s, p, a: n * s - 2 * p + k + a),
        ("transposed_padding_added", lambda n, k, s, p, a: (n - 1) * s + 2 * p + k + a),
        ("output_size_off_by_one", lambda n, k, s, p, a: (n - 1) * s - 2 * p + k + a - 1),
    ], _TR_POINTS),
    "matching_channels_formula": _formula(("t", "k", "C_in", "C_out"), [
        ("ceiling_for_floor", lambda t, k, C_in, C_out: _ceiling(t * k ** 2 * C_in * C_out / (k ** 2 * C_in + t * C_out))),
    ], _MC_POINTS),
    "input_gradient_entry": _formula(_GRAD_NAMES, [("gradient_not_flipped", _gradient_not_flipped)], _GRAD_POINTS),
    "sigmoid_backward": _sigmoid_backward,
    "cross_entropy_from_logits_backward": _ce_backward,
    "fgsm_step": _fgsm,
}
