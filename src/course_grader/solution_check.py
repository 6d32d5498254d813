"""An assignment's own solution must grade full under course-grader before students see it.

The trusted side runs only the locked cells of the source notebook and the tests; the student's
sandbox runs everything else. A test that needs a name from an ordinary (unlocked) cell -- an
``import numpy as np`` in a setup cell the instructor forgot to lock -- therefore fails for every
student, correct ones included. Two guards:

* :func:`check_solutions` grades the reference solution of every notebook of an assignment through the
  real job pipeline (:func:`course_grader.work.grade_job`, in the sandbox), and
  :func:`refusal` turns what it finds into the one-line error `course-grader release` refuses with.
* :func:`missing_instructor_name`: while grading, a test that fails with a NameError on a name no
  student answer is meant to define is the assignment's fault: the part is flagged ``instructor``
  (see :func:`instructor_flag`), not silently scored 0.

``python -m course_grader.solution_check SOURCE_DIR RELEASE_DIR [ASSIGNMENT...]`` checks released
folders without a course directory or gradebook (``make release`` runs it on solutions/ and exercises/).
"""
import ast
import copy
import glob
import json
import os
import re
import sys
import time

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def missing_instructor_name(exc, student_names):
    """The name a test lacked because no locked cell defines it, or None.

    ``exc``: what the test raised; ``student_names``: the names the solution's answers define (those
    the student's notebook may lack: the student's fault). A NameError raised by the student's own
    function (it carries ``student_error``) is the student's.
    """
    if not isinstance(exc, NameError) or getattr(exc, "student_error", None):
        return None
    name = getattr(exc, "name", None)
    if not isinstance(name, str) or name in student_names:
        return None
    return name


def lost_unlocked_name(exc, source_nb):
    """(name, cell) when the student's function failed on a name an unlocked cell of the source defines.

    The student's notebook lacks it because that instructor cell, not being locked, was changed or
    deleted. None otherwise.
    """
    error = getattr(exc, "student_error", None)
    if not isinstance(error, dict) or error.get("ename") != "NameError":
        return None
    match = re.match(r"name '([A-Za-z_]\w*)' is not defined", str(error.get("evalue", "")))
    where = unlocked_cell_defining(source_nb, match.group(1)) if match else None
    return (match.group(1), where) if where else None


def lost_name_note(name, cell):
    return (f"\n{name!r} is defined in cell {cell} of the assignment, which your notebook changed or deleted: "
            "restore that cell")


def lost_name_flag(grade_id, name, cell):
    return ["instructor", f"test '{grade_id}': the student's notebook lacks {name!r}, which the unlocked cell {cell} "
                          "of the source notebook defines (changed or deleted by the student); lock that cell"]


def _bound(code):
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def unlocked_cell_defining(source_nb, name):
    """1-based index of the first ordinary (unlocked, not an answer) code cell of the source that binds ``name``."""
    for i, c in enumerate(source_nb.get("cells", []), 1):
        nbg = (c.get("metadata") or {}).get("nbgrader") or {}
        if c.get("cell_type") == "code" and not (nbg.get("locked") or nbg.get("grade") or nbg.get("solution")):
            src = c.get("source")
            if name in _bound("".join(src) if isinstance(src, list) else src or ""):
                return i
    return None


def instructor_message(name, source_nb):
    """The message of a part its test could not grade because ``name`` is missing on the trusted side."""
    where = unlocked_cell_defining(source_nb, name)
    place = (f"the source notebook defines it in cell {where}, which is not locked" if where else
             "no locked cell of the source notebook defines it")
    return (f"not graded: the test needs the name {name!r} and {place} (the tests see only locked cells): "
            "an error in the assignment, not in your answer; your instructor is told")


def instructor_flag(grade_id, name, source_nb):
    where = unlocked_cell_defining(source_nb, name)
    place = f"defined in the unlocked cell {where} of the source notebook" if where else "defined by no locked cell"
    return ["instructor", f"test '{grade_id}' failed with NameError: {name!r} is {place}; lock that cell "
                          "(or define the name in a locked one) and regrade"]


def solution_notebook(source_nb, release_nb):
    """The released notebook with every answer cell holding the source's solution (markers removed)."""
    answers = {}
    for c in source_nb["cells"]:
        nbg = (c.get("metadata") or {}).get("nbgrader") or {}
        if nbg.get("solution"):
            src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            answers[nbg.get("grade_id")] = "".join(l for l in src.splitlines(True)
                                                   if not any(m in l for m in SOLUTION_MARKERS))
    nb = copy.deepcopy(release_nb)
    for c in nb["cells"]:
        gid = ((c.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if gid in answers:
            c["source"] = answers[gid]
    return nb


def check_solutions(pairs, limits=None):
    """Grade each (assignment, notebook, source_nb, release_nb) solution; returns [problem dicts].

    A problem: ``assignment``, ``notebook``, ``grade_id``, ``points``, ``max``, ``message`` (a part that
    does not earn its full points), or ``grade_id`` None with the flag's text as ``message``.
    """
    from . import integrity
    from .jobs import Job, TestPayload
    from .runner import SandboxSource
    from .sandbox import Limits
    from .work import grade_job
    limits = limits or Limits()
    shingles, normalized = integrity.library_shingles(), integrity.library_normalized_shingles()
    problems = []
    sandboxes = SandboxSource(prespawn=True)
    try:
        for assignment, notebook, source, release in pairs:
            payload = TestPayload(assignment=assignment, notebook=notebook, source=source, release=release,
                                  shingles=shingles, normalized_shingles=normalized, payload_id=notebook)
            data = json.dumps(solution_notebook(source, release)).encode()
            job = Job(assignment=assignment, student="(solution)", notebook=notebook, submission=data,
                      submitted_as=f"{notebook}.ipynb", payload_id=notebook, limits=limits, content_hash="-")
            result = grade_job(job, payload, sandboxes)
            instructor = {d.split("'")[1]: d for k, d in result.flags if k == "instructor" and d.count("'") >= 2}
            for gid, t in result.tests.items():
                if t["points"] < t["max"]:  # the instructor's wording of a missing name, else the student's
                    problems.append(dict(assignment=assignment, notebook=notebook, grade_id=gid, points=t["points"],
                                         max=t["max"], message=instructor.get(gid) or t["message"] or "failed"))
            for kind, detail in result.flags:
                if kind != "instructor":
                    problems.append(dict(assignment=assignment, notebook=notebook, grade_id=None, points=None,
                                         max=None, message=f"flagged {kind}: {detail}"))
    finally:
        sandboxes.close()
    return problems


def refusal(assignment, problems):
    """The one-line error for an assignment whose solution does not grade full (None if it does)."""
    mine = [p for p in problems if p["assignment"] == assignment]
    if not mine:
        return None
    p = mine[0]
    what = (f"test '{p['grade_id']}' earns {p['points']:g} of {p['max']:g}" if p["grade_id"] else "it is")
    message = " ".join(str(p["message"]).split())[:600]
    more = f" (and {len(mine) - 1} more problem(s))" if len(mine) > 1 else ""
    return (f"the solution of {assignment} ({p['notebook']}.ipynb) does not grade full under course-grader: "
            f"{what}: {message}{more}")


def _read(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    for c in nb["cells"]:
        if isinstance(c.get("source"), list):
            c["source"] = "".join(c["source"])
    return nb


def folder_pairs(source_dir, release_dir, assignments=None):
    """(assignment, notebook, source, release) for the released notebooks under two folders."""
    names = assignments or sorted(d for d in os.listdir(release_dir) if not d.startswith((".", "_"))
                                  and glob.glob(os.path.join(release_dir, d, "*.ipynb")))
    pairs = []
    for a in names:
        for rel in sorted(glob.glob(os.path.join(release_dir, a, "*.ipynb"))):
            nb = os.path.splitext(os.path.basename(rel))[0]
            pairs.append((a, nb, _read(os.path.join(source_dir, a, nb + ".ipynb")), _read(rel)))
    return pairs


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m course_grader.solution_check SOURCE_DIR RELEASE_DIR [ASSIGNMENT...]", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    pairs = folder_pairs(args[0], args[1], args[2:] or None)
    problems = check_solutions(pairs)
    bad = sorted({p["assignment"] for p in problems})
    for a in bad:
        print(f"solution_check: error: {refusal(a, problems)}", file=sys.stderr)
    print(f"solution_check: {len(pairs) - len({(p['assignment'], p['notebook']) for p in problems})} of {len(pairs)} "
          f"solution notebook(s) grade full under course-grader ({time.monotonic() - t0:.1f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
