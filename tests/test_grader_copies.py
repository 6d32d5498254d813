"""Copies of cnnmath that hide (issue 17, point 1), through the real grading pipeline.

Each case of tests/grader_corpus/copy_cases.py is a working copy of cnnmath's conv2d (checked here
against cnnmath itself, outside the sandbox) hidden one way. Graded through jobs.Job ->
work.grade_job (grader_helpers.grade_notebook) in the bubblewrap sandbox, each must lose exactly
conv2d's parts with a cnnmath flag naming the answer, while the other parts keep their points.
The detector's thresholds are checked against every honest answer of every assignment (the
solutions) and the wrong-answer corpus: none is flagged, with the margin printed and asserted.
"""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from course_grader import fingerprints, integrity
from course_grader._child_code import CodeWatch
from course_grader.notebook import defined_names
from course_grader.sandbox import Limits
from tests.grader_corpus import cases as corpus
from tests.grader_corpus.copy_cases import COPY_CASES, LOSES_EVERY_PART
from tests.grader_helpers import (REPO, cell_text, grade_notebook, graded_points, nbg, needs_bwrap,
                                  reference_answers, student_notebook)

ASSIGNMENT = "conv2d"
CONV_PARTS = {corpus.P2, corpus.P3}
MARGIN = 0.2   # the highest honest containment stays this far under the threshold


def _notebooks(assignment):
    source = json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    release = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    for c in release["cells"]:
        c["source"] = cell_text(c)
    return source, release


def _parts(build):
    """(conv2d answer, cell added after it or None) of a case."""
    built = build()
    return built if isinstance(built, tuple) else (built, None)


def _run_case(name):
    """Run the case's cells here (trusted: these are the corpus's own copies) -> its namespace."""
    ns = {"__name__": "__main__", "np": np}
    answer, added = _parts(COPY_CASES[name])
    exec(compile(answer, f"<{name}>", "exec"), ns)
    if added:
        exec(compile(added, f"<{name} added>", "exec"), ns)
    return ns


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    source, release = _notebooks(ASSIGNMENT)
    sol = reference_answers(source)
    folder = tmp_path_factory.mktemp("copies")
    paths = {}
    for name, build in dict(COPY_CASES, honest=lambda: sol["conv2d"]).items():
        answer, added = _parts(build)
        nb = student_notebook(release, {**sol, "conv2d": answer})
        if added:
            at = next(i for i, c in enumerate(nb["cells"]) if nbg(c).get("grade_id") == "conv2d") + 1
            nb["cells"].insert(at, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                    "source": added, "id": "added-by-student"})
        paths[name] = folder / f"{name}.ipynb"
        paths[name].write_text(json.dumps(nb))
    # one after another: CPython 3.11's ast.parse is not safe in two threads at once (SystemError)
    results = {name: grade_notebook(source, release, path, Limits(cell_timeout=30), assignment=ASSIGNMENT,
                                    student=name) for name, path in paths.items()}
    return SimpleNamespace(results=results, points=graded_points(source))


def test_every_copy_would_earn_points_if_it_were_not_caught():
    import cnnmath
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    for name in COPY_CASES:
        got = _run_case(name)["conv2d"](x, w, b, stride=2, padding=1)
        assert np.allclose(got, cnnmath.conv2d(x, w, b, stride=2, padding=1)), name


@needs_bwrap
@pytest.mark.parametrize("name", sorted(COPY_CASES))
def test_a_hidden_copy_loses_its_parts_with_a_flag_naming_the_answer(graded, name):
    result = graded.results[name]
    lost = set(graded.points) if name in LOSES_EVERY_PART else CONV_PARTS
    for gid, points in graded.points.items():
        expected = 0.0 if gid in lost else points
        got = result["tests"][gid]["points"]
        assert got == expected, (name, gid, got, result["tests"][gid]["message"][:300], result["flags"])
    cnn = [msg for kind, msg in result["flags"] if kind == "cnnmath"]
    assert cnn and all("answer 'conv2d'" in msg or "a cell you added" in msg for msg in cnn), (name, result["flags"])
    assert any("a cell you added" in msg for msg in cnn) == ("helper_by" in name), (name, result["flags"])
    assert {kind for kind, _ in result["flags"]} == {"cnnmath"}, (name, result["flags"])


@needs_bwrap
def test_the_honest_answer_in_the_same_run_gets_full_marks_unflagged(graded):
    result = graded.results["honest"]
    assert result["flags"] == [] and result["score"] == sum(graded.points.values()), result["flags"]


# -- thresholds against honest answers ----------------------------------------------------------------
def _run_answers(nb):
    """Execute a notebook's setup and answer cells here (the course's own answers: trusted) and return
    {function name: the watch's fingerprint of it}."""
    watch = CodeWatch()
    ns = {"__name__": "__main__"}
    names = set()
    for c in nb["cells"]:
        md = nbg(c)
        if c["cell_type"] != "code" or (md.get("grade") and not md.get("solution")):
            continue
        exec(compile(cell_text(c), "<cell>", "exec"), ns)
        if md.get("solution"):
            names |= defined_names(cell_text(c))
    watch.report()
    return {n: watch.report(ns[n]) for n in sorted(names) if callable(ns.get(n))}


def _wrong_answer_notebooks():
    """The honest and misconception notebooks of the grader corpus (tests/grader_corpus/cases.py)."""
    ctx = SimpleNamespace(release={}, sol={}, points={})
    for a in corpus.ASSIGNMENTS:
        source, release = _notebooks(a)
        ctx.release[a], ctx.sol[a], ctx.points[a] = release, reference_answers(source), graded_points(source)
    # the honest students and the misconceptions (m_*: plain wrong NumPy, nothing that attacks the grader)
    chosen = [c for c in corpus.CASES if c.honest or c.name.startswith("m_")]
    assert len(chosen) >= 15, [c.name for c in chosen]
    out = []
    for case in chosen:
        files = case.build(ctx)
        assert list(files) == [f"{case.assignment}.ipynb"], (case.name, list(files))
        out.append((case.name, files[f"{case.assignment}.ipynb"]))
    return out


def test_no_honest_answer_of_any_assignment_or_of_the_wrong_answer_corpus_is_flagged():
    assignments = sorted(p.parent.name for p in REPO.glob("solutions/*/*.ipynb") if p.parent.name == p.stem)
    assert len(assignments) >= 11
    notebooks = [(a, _notebooks(a)[0]) for a in assignments] + _wrong_answer_notebooks()
    library = fingerprints.library_code_fingerprints()
    assert len(library) >= 100 and len(fingerprints.library_statements()) >= 40
    scores, structure = [], []
    for label, nb in notebooks:
        reports = _run_answers(nb)
        assert reports, label
        for name, report in reports.items():
            assert report["codes"] >= 1, (label, name)
            score, which = fingerprints.executed_containment(report, library)
            scores.append((score, label, name, which))
            assert fingerprints.runs_cnnmath_code(report, library) is None, (label, name, score, which)
        for c in nb["cells"]:
            if nbg(c).get("solution"):
                code, gid = cell_text(c), nbg(c).get("grade_id")
                assert not integrity.source_copies_cnnmath(code), (label, gid)
                score, which = fingerprints.structure_containment(code)
                structure.append((score, label, gid, which))
    top, top_source = max(scores), max(structure)
    print(f"\nhighest honest bytecode containment {top[0]:.3f} ({top[1]}: {top[2]} vs cnnmath's {top[3]}); "
          f"threshold {fingerprints.CODE_CONTAINMENT}")
    print(f"highest honest statement containment {top_source[0]:.3f} ({top_source[1]}: {top_source[2]} vs "
          f"cnnmath's {top_source[3]}); threshold {fingerprints.STRUCTURE_CONTAINMENT}")
    assert top[0] <= fingerprints.CODE_CONTAINMENT - MARGIN, top
    assert top_source[0] <= fingerprints.STRUCTURE_CONTAINMENT - MARGIN, top_source
    assert len(scores) >= 60 and len(structure) >= 60


def test_the_copies_are_far_over_the_threshold():
    for name in set(COPY_CASES) - LOSES_EVERY_PART:
        watch = CodeWatch()
        ns = _run_case(name)
        score, which = fingerprints.executed_containment(watch.report(ns["conv2d"]))
        assert score >= 0.95, (name, score, which)
    for name in ("copy_renamed_and_reordered", "copy_diluted_in_200_lines", "copy_of_im2col_helper"):
        source = COPY_CASES[name]()
        assert len(source.splitlines()) > 300, name
        score, which = fingerprints.structure_containment(source)
        assert score >= 0.95, (name, score, which)   # the source alone gives these away, names and order aside


def test_the_diluted_copy_is_mostly_the_students_own_lines():
    source = COPY_CASES["copy_diluted_in_200_lines"]()
    own = [l for l in source.splitlines() if "my_helper_" in l or "exercise " in l]
    assert len(own) >= 60 and source.count("\n") - len(COPY_CASES["copy_exec_base64"]().splitlines()) >= 200


def test_the_watch_never_runs_the_students_code_while_it_looks():
    """Objects whose __class__, attributes or items would run code when read are walked by type only."""
    ran = []

    class Trap:
        @property
        def __class__(self):
            ran.append("__class__")
            return Trap

        def __getattr__(self, name):
            ran.append(name)
            raise AttributeError(name)

        def __call__(self, x):
            return x

    class TrapList(list):
        def __getitem__(self, i):
            ran.append("getitem")
            return super().__getitem__(i)

    trap, items = Trap(), TrapList([Trap()])

    def answer(x):
        return trap(x), items

    watch = CodeWatch()
    report = watch.report(answer)
    assert ran == [] and report["codes"] >= 2, (ran, report["codes"])   # answer's and Trap.__call__'s code


def _cells(*specs):
    return [{"role": role, "grade_id": gid, "source": src, "stub": ""} for role, gid, src in specs]


def test_a_flag_costs_the_parts_that_use_the_flagged_code_through_any_chain_of_cells():
    """The routes where a flag used to leave the points: a call whose function no cell defines by name,
    a flagged helper defined after the answer that uses it, a test reaching the answer through an
    instructor cell, and a flagged cell that no part can be traced to (every student part is lost)."""
    owners = {"conv2d": "conv2d", "helper_user": "uses-helper"}
    cells = _cells(("answer", "conv2d", "exec(blob, globals())\n"),
                   ("answer", "uses-helper", "def helper_user(x):\n    return later(x)\n"),
                   ("student", None, "def later(x):\n    return x\n"),
                   ("instructor", "seed", "Z = helper_user(1)\n"),
                   ("test", "t_conv", "assert conv2d(1) == 1\n"),
                   ("test", "t_seed", "assert Z == 1\n"),
                   ("test", "t_other", "assert 1 + 1 == 2\n"))
    flags, lost = integrity.judge_cells(cells, set(), {("call", "conv2d"), ("cell", 2)}, owners=owners)
    assert lost == ["t_conv", "t_seed"], (flags, lost)
    assert any("answer 'conv2d'" in m and "conv2d" in m for _, m in flags), flags
    assert any("a cell you added" in m for _, m in flags), flags
    # a flagged added cell whose names no part uses: every part that checks a student function is lost
    cells = _cells(("answer", "conv2d", "def conv2d(x):\n    return globals()[name](x)\n"),
                   ("student", None, "exec(blob, globals())\n"),
                   ("test", "t_conv", "assert conv2d(1) == 1\n"),
                   ("test", "t_other", "assert 1 + 1 == 2\n"))
    flags, lost = integrity.judge_cells(cells, set(), {("cell", 1)}, owners=owners)
    assert lost == ["t_conv"] and len(flags) == 1, (flags, lost)
    # and nothing flagged costs nothing
    assert integrity.judge_cells(cells, set(), set(), owners=owners) == ([], [])
