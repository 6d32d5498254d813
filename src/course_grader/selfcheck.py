"""The student's fast self-check of a notebook: ``python -m course_grader.selfcheck NOTEBOOK.ipynb``.

Runs the notebook's cells in order in this process (the student's own code on the student's own
machine: no sandbox), as ``nbgrader validate`` does, and reports every graded test cell as passed
or failed with the same messages as grading, plus the misconception grading would name
(:func:`course_grader.misconceptions.diagnose_calls` on the calls the test made). A test cell
fails when it raises or writes to stderr, as in ``nbgrader validate``.

Start-up is kept short: only the standard library is imported here; NumPy comes with the
notebook's own imports, the misconception finder only when a test fails (measure with
``python -X importtime -m course_grader.selfcheck``; ``bench/selfcheck.py`` compares the timing
with ``nbgrader validate`` in the same run).
"""
import contextlib
import io
import json
import os
import sys

__all__ = ["check_notebook", "main"]


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _plain_python(code):
    """IPython syntax (magics, !shell) to plain Python, as a kernel would (IPython only if needed)."""
    if not any(line.lstrip().startswith(("%", "!")) for line in code.splitlines()):
        return code
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(code)
    except ImportError:
        return "\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in code.splitlines())


class _Recorder:
    """Wraps a student's function to record (name, args, kwargs, value) of each call of a test."""

    def __init__(self, name, func, calls):
        self.name, self.func, self.calls = name, func, calls
        self.__name__ = name
        # seen as the student's own function by the notebook's checks (cnnmath use)
        self.__module__ = getattr(func, "__module__", None)
        if hasattr(func, "__code__"):
            self.__code__ = func.__code__

    def __call__(self, *args, **kwargs):
        value = self.func(*args, **kwargs)
        if len(self.calls) < 200:
            self.calls.append((self.name, args, kwargs, value))
        return value


def _answer_names(cells):
    """Names defined by ``def`` or assignment at the top of the answer cells."""
    import ast
    names = set()
    for cell in cells:
        if cell.get("cell_type") == "code" and _meta(cell).get("solution"):
            try:
                tree = ast.parse(_plain_python(_source(cell)))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names.add(node.name)
    return names


def _failure_message(exc, calls):
    """The message of a failed test cell, with the misconception grading would name."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__  # as the grader writes it
    if calls:
        try:
            from .misconceptions import diagnose_calls
            found = diagnose_calls(calls)
        except Exception:  # the hint is a bonus: never hide the failure behind it
            found = None
        if found:  # as grading does: the grader's sentence replaces the test's own hint
            text = text.split("\nLikely misconception:")[0] + "\nLikely misconception: " + found[1]
    return text


def check_notebook(path):
    """Run the notebook at ``path``; returns ``[{"grade_id", "points", "passed", "message"}]``.

    One record per graded test cell, in order. Errors in other cells are reported as the
    ``message`` of a record with ``grade_id`` None (they are not graded, but explain later failures).
    """
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    with contextlib.chdir(os.path.dirname(os.path.abspath(path))):  # as Jupyter runs a notebook
        return _run_cells(nb.get("cells", []))


def _run_cells(cells):
    """Run ``cells`` in order in a fresh namespace; the records of :func:`check_notebook`."""
    answers = _answer_names(cells)
    ns = {"__name__": "__main__", "In": [""]}
    records = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        meta = _meta(cell)
        code = _source(cell)
        ns["In"].append(code)
        is_test = bool(meta.get("grade")) and not meta.get("solution")
        calls = []
        if is_test:
            for name in answers:
                if callable(ns.get(name)) and not isinstance(ns[name], _Recorder):
                    ns[name] = _Recorder(name, ns[name], calls)
        err = io.StringIO()
        exc = None
        with contextlib.redirect_stderr(err):
            try:
                exec(compile(_plain_python(code), f"<cell {index}>", "exec"), ns)
            except Exception as e:  # a failing test, or an error in the student's cell
                exc = e
        for name in answers:
            if isinstance(ns.get(name), _Recorder):
                ns[name] = ns[name].func
        if is_test:
            message = _failure_message(exc, calls) if exc is not None else ""
            if exc is None and err.getvalue().strip():
                message = "the test wrote to stderr:\n" + err.getvalue().strip()[-2000:]
            records.append({"grade_id": meta.get("grade_id"), "points": meta.get("points"),
                            "passed": not message, "message": message})
        elif exc is not None:
            records.append({"grade_id": None, "points": None, "passed": False,
                            "message": f"cell {index} raised " + _failure_message(exc, None)})
    return records


def main(argv=None):
    """Command line: check each notebook; exit status 1 if a test fails."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m course_grader.selfcheck NOTEBOOK.ipynb [NOTEBOOK.ipynb ...]\n\n"
              "Runs the notebook's visible tests here (no sandbox), with the messages and\n"
              "misconception hints of grading; exit status 1 if a test fails.")
        return 0 if argv else 2
    failed = 0
    for path in argv:
        try:
            records = check_notebook(path)
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read the notebook: {exc}")
            failed += 1
            continue
        tests = [r for r in records if r["grade_id"] is not None]
        bad = [r for r in tests if not r["passed"]]
        for r in records:
            if r["grade_id"] is None:
                print(f"note: {r['message'].splitlines()[0]}")
            elif r["passed"]:
                print(f"passed  {r['grade_id']} ({r['points']} points)")
            else:
                print(f"FAILED  {r['grade_id']} ({r['points']} points)")
                print("    " + r["message"].replace("\n", "\n    "))
        print(f"{path}: {len(tests) - len(bad)} of {len(tests)} tests pass"
              + ("" if bad else " (the hidden tests at grading check more cases)"))
        failed += bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
