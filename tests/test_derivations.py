"""Derivations graded by SymPy: expressions across the wire, and the checker's verdicts.

* course_grader.expressions: SymPy expressions cross the sandbox boundary as plain trees and are
  rebuilt only from whitelisted constructors (never sympify/eval), within size, depth and digit
  bounds; forged trees are refused, and decoding computes nothing (2^(10^59) decodes instantly).
* the checker of the derivations notebook (solutions/_sources/check_expressions.py, run as the
  notebook runs it): several rewritings of every right answer earn every point; typical wrong
  answers earn exactly the points of the properties they still have (right at d = 1 only, right
  for stride 1 only); numbers, strings, floats and foreign symbols earn 0 with a clear message;
  an expression that cannot be evaluated is stopped by the time limit.
* end to end, through the real bubblewrap sandbox and grader: the same verdicts, and a call that
  never returns or a hostile expression costs a bounded time.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sympy as sp

from course_grader import wire
from course_grader.expressions import MAX_DEPTH, MAX_NODES, ExpressionError, expression_from_tree, \
    expression_to_tree

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "derivations" / "derivations.ipynb"
RELEASE = ROOT / "exercises" / "derivations" / "derivations.ipynb"

n, k, s, p, d, t = sp.symbols("n k s p d t", integer=True)


# -- the wire ---------------------------------------------------------------------------------
@pytest.mark.parametrize("expr", [
    sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1,
    sp.ceiling(n / s) - sp.Max(k, 2 * p) + sp.Min(n, k) + sp.Abs(n - k) + sp.Mod(n, s),
    sp.Piecewise((t, (t >= 0) & (t <= 1)), (2 - t, (t > 1) & (t <= 2)), (0, True)),
    sp.Rational(3, 7) * n ** 2 / (k + 1) + sp.exp(-t) * sp.Heaviside(t) + sp.pi + sp.binomial(n, 2),
])
def test_expressions_round_trip_through_the_wire(expr):
    """An allowed expression comes back equal (same tree), with plain Symbols of the same names."""
    back = wire.loads(wire.dumps({"value": expr}))["value"]
    plain = {sym: sp.Symbol(sym.name) for sym in expr.free_symbols}
    assert sp.srepr(back) == sp.srepr(expr.xreplace(plain))
    assert {type(v) for v in back.free_symbols} <= {sp.Symbol}


def test_disallowed_operations_are_refused_on_both_sides():
    with pytest.raises(ExpressionError, match="Integral"):
        expression_to_tree(sp.Integral(n, n))
    with pytest.raises(ExpressionError, match="f"):
        expression_to_tree(sp.Function("f")(n))
    for forged, what in [(["eval", ["Symbol", "n"]], "not allowed"), (["Symbol", "__import__"], "identifier"),
                         (["Integer", "1" * 61], "digits"), (["Rational", "1", "0"], "denominator"),
                         (["Add", ["Symbol", "n"]], "arguments"), ("n + 1", "malformed"),
                         (["Piecewise", ["Symbol", "n"]], "pairs")]:
        with pytest.raises(ExpressionError, match=what):
            expression_from_tree(forged)
        with pytest.raises(wire.WireError):  # a forged message is malformed, never evaluated
            header = json.dumps({"__sympy__": forged}).encode()
            wire.loads(len(header).to_bytes(8, "big") + header)


def test_size_and_depth_are_bounded():
    deep = ["Symbol", "n"]
    for _ in range(MAX_DEPTH + 5):
        deep = ["Abs", deep]
    with pytest.raises(ExpressionError, match="nested"):
        expression_from_tree(deep)
    wide = ["Add"] + [["Integer", str(i)] for i in range(MAX_NODES + 5)]
    with pytest.raises(ExpressionError, match="nodes"):
        expression_from_tree(wide)
    with pytest.raises(ExpressionError, match="nodes"):
        expression_to_tree(sp.Add(*sp.symbols(f"x0:{MAX_NODES + 5}")))


def test_decoding_computes_nothing():
    """2^(10^59)^(10^59) is rebuilt unevaluated in well under a second."""
    big = str(10 ** 59)
    tree = ["Pow", ["Integer", "2"], ["Pow", ["Integer", big], ["Integer", big]]]
    start = time.monotonic()
    expr = expression_from_tree(tree)
    assert time.monotonic() - start < 1.0 and isinstance(expr, sp.Pow)


# -- the checker, as the notebook runs it -----------------------------------------------------
_RUN = r"""
import json, sys
nb = json.load(open(sys.argv[1], encoding="utf-8"))
answers = json.loads(sys.argv[2])
results = []
for variant in answers:
    ns = {"__name__": "__main__"}
    failed = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        meta = cell["metadata"].get("nbgrader", {})
        src = variant.get(meta.get("grade_id"), "".join(cell["source"]))
        try:
            exec(compile(src, meta.get("grade_id", "cell"), "exec"), ns)
        except Exception as exc:
            if meta.get("grade") and not meta.get("solution"):
                failed[meta["grade_id"]] = f"{type(exc).__name__}: {exc}"[:400]
    results.append(failed)
print(json.dumps(results))
"""


def _failures(variants):
    """Run the solution notebook with answer cells replaced; per variant, the failed parts -> message."""
    proc = subprocess.run([sys.executable, "-c", _RUN, str(SOLUTION), json.dumps(variants)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _answer(name, body):
    return f"def {name}():\n    return {body}\n"


REWRITINGS = [
    {"output_size_formula": "sp.floor((n + 2 * p - d * k + d - 1 + s) / s)",
     "transposed_output_size_formula": "s * n - s - 2 * p + k + a",
     "receptive_field_stride1": "L * d * k - L * d + 1",
     "receptive_field_strided": "1 + (k - 1) * (1 - s ** L) / (1 - s)",
     "kernel_gradient_entry": "g_0_0 * x_0_1 + g_0_1 * x_0_2 + g_1_0 * x_1_1 + g_1_1 * x_1_2",
     "input_gradient_entry": "K_1_2 * g_0_0 + K_1_1 * g_0_1 + K_0_2 * g_1_0 + K_0_1 * g_1_1",
     "matching_channels_formula": "-sp.ceiling(-t * k ** 2 * C_in * C_out / (k ** 2 * C_in + t * C_out))",
     "separable_cost_ratio_formula": "1 / C_out + 1 / k ** 2",
     "box_convolution_formula": "sp.Max(0, 1 - sp.Abs(x - 1))"},
    {"output_size_formula": "-sp.ceiling(-(n + 2 * p - d * (k - 1) - 1) / s) + 1",
     "transposed_output_size_formula": "sp.expand((n - 1) * s + k - 2 * p + a)",
     "receptive_field_stride1": "sp.factor(1 + L * d * (k - 1))",
     "receptive_field_strided": "sp.simplify(1 + (k - 1) * (s ** L - 1) / (s - 1))",
     "kernel_gradient_entry": "sum(sp.Symbol(f'g_{i}_{j}') * sp.Symbol(f'x_{i}_{j + 1}') for i in range(2) for j in range(2))",
     "input_gradient_entry": "sp.expand((g_0_0 * K_1_2 + g_1_1 * K_0_1) + (g_0_1 * K_1_1 + g_1_0 * K_0_2))",
     "matching_channels_formula": "sp.floor(t * C_in * C_out / (C_in + t * C_out / k ** 2))",
     "separable_cost_ratio_formula": "(k ** 2 + C_out) / (C_out * k ** 2)",
     "box_convolution_formula": "x * (sp.Heaviside(x) - sp.Heaviside(x - 1)) + (2 - x) * (sp.Heaviside(x - 1) - sp.Heaviside(x - 2))"},
]


def test_equivalent_rewritings_earn_every_point():
    """Several rewritings of each right answer (expanded, factored, floor as -ceiling(-x), ...) pass every part."""
    results = _failures([{name: _answer(name, body) for name, body in v.items()} for v in REWRITINGS])
    for variant, failed in zip(REWRITINGS, results):
        assert failed == {}, f"a right answer was rejected: {failed}"


# each wrong answer: the parts it must fail, exactly (the others it passes: partial credit), and the
# words its message must contain
WRONG = [
    ("output_size_formula", "sp.floor((n + 2 * p - k) / s) + 1",  # dilation left out: right at d = 1 only
     {"test_output_size_formula_dilation"}, "at n = 7, k = 3, s = 1, p = 0, d = 2"),
    ("output_size_formula", "sp.ceiling((n + 2 * p - d * (k - 1) - 1) / s) + 1",  # right for stride 1 only
     {"test_output_size_formula_stride", "test_output_size_formula_dilation"}, "yours gives"),
    ("output_size_formula", "sp.floor((n + 2 * p - d * (k - 1) - 1) / s)",  # the + 1 missing: wrong everywhere
     {"test_output_size_formula_stride1", "test_output_size_formula_stride", "test_output_size_formula_dilation"},
     "the formula gives 16\nyours gives 15"),
    ("transposed_output_size_formula", "n - 1 - 2 * p + k",  # stride forgotten: right at stride 1 only
     {"test_transposed_size_formula_stride"}, "yours gives"),
    ("receptive_field_stride1", "1 + L * (k - 1)", {"test_receptive_field_stride1_dilation"}, "d = 2"),
    ("matching_channels_formula", "sp.ceiling(t * k ** 2 * C_in * C_out / (k ** 2 * C_in + t * C_out))",
     {"test_matching_channels_formula"}, "gives 83\nyours gives 84"),
]


def test_wrong_answers_earn_exactly_the_points_of_their_right_properties():
    results = _failures([{name: _answer(name, body)} for name, body, _, _ in WRONG])
    for (name, body, parts, words), failed in zip(WRONG, results):
        assert set(failed) == parts, f"{name} = {body}: failed {sorted(failed)}, expected to fail {sorted(parts)}"
        assert any(words in msg for msg in failed.values()), f"{name} = {body}: messages {failed}"


NOT_EXPRESSIONS = [
    ("16", "expected a SymPy expression in n, k, s, p, d\ngot int"),
    ("16.0", "got float"),
    ('"floor((n + 2*p - d*(k - 1) - 1)/s) + 1"', "got str"),
    ("sp.Integer(16)", "at n = 8, k = 3, s = 1, p = 0, d = 1\nthe formula gives 6\nyours gives 16"),
    ("sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1.0", "contains the float 1.0"),
    ("sp.floor((sp.Symbol('N') + 2 * p - d * (k - 1) - 1) / s) + 1", "uses N,\nwhich is not one of n, k, s, p, d"),
    ("sp.Eq(n, 16)", "expected a SymPy expression"),
]


def test_non_expressions_earn_zero_with_a_clear_message():
    results = _failures([{"output_size_formula": _answer("output_size_formula", body)} for body, _ in NOT_EXPRESSIONS])
    for (body, words), failed in zip(NOT_EXPRESSIONS, results):
        assert "test_output_size_formula_stride1" in failed, f"{body} passed"
        assert words in failed["test_output_size_formula_stride1"], f"{body}: {failed}"


def test_a_hostile_expression_is_stopped_by_the_time_limit():
    """binomial(10^50 x, 10^20) at a point never finishes: the checker gives up after its time limit
    (and 2^(2^(10^59)) is refused at once)."""
    hostile = "sp.binomial(x_0_1 * sp.Integer(10) ** 50, sp.Integer(10) ** 20, evaluate=False)"
    start = time.monotonic()
    failed, = _failures([{"kernel_gradient_entry": _answer("kernel_gradient_entry", hostile)}])
    elapsed = time.monotonic() - start
    assert "took longer than" in failed["test_kernel_gradient_entry"], failed
    assert elapsed < 60, f"the hostile expression took {elapsed:.0f} s"
    tower = "sp.Pow(2, sp.Pow(2, sp.Integer(10) ** 59, evaluate=False), evaluate=False) * x_0_1"
    failed, = _failures([{"kernel_gradient_entry": _answer("kernel_gradient_entry", tower)}])
    assert "evaluating your expression failed" in failed["test_kernel_gradient_entry"], failed


# -- end to end: the real sandbox and grader --------------------------------------------------
needs_bwrap = pytest.mark.skipif(subprocess.run(["which", "bwrap"], capture_output=True).returncode != 0,
                                 reason="bubblewrap (bwrap) is not installed")


@needs_bwrap
def test_the_grader_scores_expressions_from_the_sandbox(tmp_path):
    """Through bubblewrap: rewritings earn the points, a float earns 0, partial credit per property,
    an Integral is refused at the boundary, and a call that never returns ends in the time limit."""
    from course_grader import integrity
    from course_grader.jobs import Job, TestPayload
    from course_grader.sandbox import Limits
    from course_grader.work import grade_job

    source, release = json.loads(SOLUTION.read_text()), json.loads(RELEASE.read_text())
    answers = {name: _answer(name, body) for name, body in REWRITINGS[0].items()}
    # the canonical formula is a derivation, not a copy of cnnmath.symbolic (which holds the same formula)
    answers["output_size_formula"] = _answer("output_size_formula", "sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1")
    answers["transposed_output_size_formula"] = _answer("transposed_output_size_formula", "16.0")
    answers["receptive_field_stride1"] = _answer("receptive_field_stride1", "1 + L * (k - 1)")
    answers["receptive_field_strided"] = _answer("receptive_field_strided", "sp.Integral(s, (s, 0, L))")
    answers["separable_cost_ratio_formula"] = "def separable_cost_ratio_formula():\n    while True:\n        pass\n"
    answers["matching_channels_formula"] = _answer(
        "matching_channels_formula", "sp.ceiling(t * k ** 2 * C_in * C_out / (k ** 2 * C_in + t * C_out))")
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    path = tmp_path / "derivations.ipynb"
    path.write_text(json.dumps(nb))
    start = time.monotonic()
    payload = TestPayload(assignment="derivations", notebook="derivations", source=source, release=release,
                          shingles=integrity.library_shingles(),
                          normalized_shingles=integrity.library_normalized_shingles(), payload_id="derivations")
    job = Job(assignment="derivations", student="s1", notebook="derivations", submission=path.read_bytes(),
              submitted_as=path.name, payload_id="derivations",
              limits=Limits(cell_timeout=15, notebook_timeout=120), content_hash="-")
    result = grade_job(job, payload)
    elapsed = time.monotonic() - start
    tests = result.tests
    points = {gid: r["points"] for gid, r in tests.items()}
    full = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"] for c in source["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade") and not c["metadata"]["nbgrader"].get("solution")}
    for gid in ("test_output_size_formula_stride1", "test_output_size_formula_stride", "test_output_size_formula_dilation",
                "test_receptive_field_stride1_formula", "test_kernel_gradient_entry", "test_input_gradient_entry"):
        assert points[gid] == full[gid], f"{gid}: {tests[gid]}"
    assert points["test_transposed_size_formula_stride1"] == 0 and "got float" in tests[
        "test_transposed_size_formula_stride1"]["message"]
    assert points["test_receptive_field_stride1_dilation"] == 0
    from course_grader.misconceptions import SENTENCES
    ceiling = tests["test_matching_channels_formula"]
    assert ceiling["points"] == 0 and ceiling.get("misconception") == "ceiling_for_floor", ceiling
    assert SENTENCES["ceiling_for_floor"] in ceiling["message"]
    assert points["test_receptive_field_strided_formula"] == 0 and "Integral" in tests[
        "test_receptive_field_strided_formula"]["message"]
    assert points["test_separable_cost_ratio_formula"] == 0 and "time limit" in tests[
        "test_separable_cost_ratio_formula"]["message"]
    assert elapsed < 110, f"grading took {elapsed:.0f} s"
