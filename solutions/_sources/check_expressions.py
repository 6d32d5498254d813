import json
import os
import select
import signal
import time

import sympy as sp

try:
    import resource
except ImportError:  # Windows: no CPU limit (and no fork: see _in_child)
    resource = None

MAX_NODES = 4000
# The grader sets GRADING_SEED per student (hidden points); elsewhere it is 0.
GRADING_SEED = globals().get("GRADING_SEED", 0)


def _is_expression(got):
    return isinstance(got, sp.Basic) and not isinstance(got, (sp.logic.boolalg.Boolean, sp.Tuple, sp.MatrixBase))


def _as_expression(name, got, symbols):
    """Check that ``got`` is a SymPy expression over ``symbols`` (names) with exact numbers only."""
    given = ", ".join(symbols)
    assert _is_expression(got), (
        f"{name}: not a SymPy expression\nexpected a SymPy expression in {given}\n"
        f"got {type(got).__name__}: {str(got)[:40]}\n(a number or a string is not a derivation:\n"
        "build the formula from the symbols)")
    unknown, count = set(), 0
    for node in sp.preorder_traversal(got):
        count += 1
        assert count <= MAX_NODES, f"{name}:\nthe expression has more than {MAX_NODES} nodes"
        assert not (isinstance(node, sp.Basic) and node.is_Float), (
            f"{name}:\nthe expression contains the float {node}:\nwrite exact numbers (sp.Rational(1, 2), not 0.5)")
        if isinstance(node, sp.Symbol) and node.name not in symbols:
            unknown.add(node.name)
    assert not unknown, f"{name}:\nthe expression uses {', '.join(sorted(unknown))},\nwhich is not one of {given}"


def _equal(a, b):
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(sp.N(a)), float(sp.N(b))
        return abs(a - b) <= 1e-9 * (1 + abs(b))
    a, b = sp.sympify(a), sp.sympify(b)
    if a.is_Rational and b.is_Rational:
        return a == b
    diff = sp.N(a - b, 30)
    return diff.is_number and diff.is_finite is not False and abs(diff) <= 1e-20 * (1 + abs(sp.N(b, 30)))


def _evaluate(expr, symbols, point):
    value = expr.xreplace({symbols[k]: sp.Integer(v) if isinstance(v, int) else sp.Rational(str(v))
                           for k, v in point.items()})
    value = value.doit() if not value.is_number else value
    if isinstance(value, sp.Piecewise) or value.has(sp.Piecewise):
        value = sp.piecewise_fold(value).doit()
    return value


def _show(value):
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _judge(got, expected, symbols, points, wrong, symbolic):
    """Runs in a child process: grid comparison, known wrong forms, then symbolic equivalence."""
    got = got.xreplace({sp.Symbol(k): v for k, v in symbols.items()})
    report = {"mismatch": None, "matches": None, "proved": None, "checked": 0}
    for point in points:
        want = expected(**point) if callable(expected) else _evaluate(expected, symbols, point)
        have = _evaluate(got, symbols, point)
        report["checked"] += 1
        if not _equal(have, want):
            report["mismatch"] = (point, _show(want), _show(have))
            break
    if report["mismatch"] is not None:
        for label, form in (wrong or {}).items():
            if all(_equal(_evaluate(got, symbols, q), _evaluate(form, symbols, q)) for q in points[:40]):
                report["matches"] = label
                break
    yield report
    if symbolic and report["mismatch"] is None and not callable(expected):
        report["proved"] = bool(sp.simplify(got - expected) == 0)
        yield report


def _in_child(work, seconds):
    """Run the generator ``work`` in a forked process, yielding its reports until ``seconds`` pass.

    Without fork (Windows) it runs inline, without a time limit."""
    if not hasattr(os, "fork"):
        yield from work()
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, report each stage as one JSON line, exit without cleanup
        try:
            os.close(read_end)
            if resource is not None:
                resource.setrlimit(resource.RLIMIT_CPU, (int(seconds) + 2, int(seconds) + 2))
            for report in work():
                os.write(write_end, (json.dumps(report, default=str) + "\n").encode())
        except BaseException as exc:
            os.write(write_end, (json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300]}) + "\n").encode())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline, buffer = time.monotonic() + seconds, b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                return
            chunk = os.read(read_end, 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield json.loads(line)
    finally:
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def grid(domain, valid=None, fixed=None, count=60, seed=0):
    """Random integer points ``{symbol: value}``: each symbol uniform in its inclusive range
    ``domain[symbol]``, ``fixed`` values held, only points where ``valid(**point)`` holds."""
    rng = np.random.default_rng(seed)
    points, tries = [], 0
    while len(points) < count and tries < 200 * count:
        tries += 1
        point = {k: int(rng.integers(lo, hi + 1)) for k, (lo, hi) in domain.items()}
        point.update(fixed or {})
        if (valid is None or valid(**point)) and point not in points:
            points.append(point)
    return points


def check_expression(name, got, expected, symbols, points, wrong=None, seconds=10.0, symbolic=True):
    """Grade a derived formula: ``got`` must be a SymPy expression in ``symbols`` (name -> Symbol)
    equal to ``expected`` (an expression, or a function of the symbols' values giving the exact
    number) at every point of ``points`` (exact rational arithmetic). The comparison runs in a
    child process stopped after ``seconds``. ``wrong`` (label -> expression) names a typical
    mistake the answer matches. With ``symbolic``, SymPy's ``simplify`` then tries to prove the
    equivalence (reported, never required: floors rarely simplify)."""
    _as_expression(name, got, symbols)
    final = None
    for report in _in_child(lambda: _judge(got, expected, symbols, points, wrong, symbolic), seconds):
        final = report
        assert "error" not in report, f"{name}:\nevaluating your expression failed:\n{report['error']}"
        if report["mismatch"] is not None:
            break
    assert final is not None, (
        f"{name}:\nevaluating your expression on {len(points)} integer points\ntook longer than {seconds:g} s "
        "(simplify it, or avoid huge powers)")
    if final["mismatch"] is not None:
        point, want, have = final["mismatch"]
        where = ", ".join(f"{k} = {v}" for k, v in point.items())
        hint = f"\nit matches {final['matches']}" if final["matches"] else ""
        import textwrap  # lines of at most 60 characters: nbgrader validate cuts longer ones
        text = f"{name}: wrong value\nat {where}\nthe formula gives {want}\nyours gives {have}{hint}" \
               f"\nyour expression: {_show(got)}"
        error = AssertionError("\n".join("\n".join(textwrap.wrap(line, 60, subsequent_indent="  ")) or line
                                         for line in text.splitlines()))
        error.public_summary = f"{name}: wrong at {where}" + hint.replace("\nit", "; it")  # what a hidden test may show
        raise error
    return final
