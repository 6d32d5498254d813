"""`course-grader release` refuses an assignment whose own solution does not grade full (issue 12, point 9).

The broken assignment is the real output_size with one instructor slip: ``import numpy as np`` moved out of
the locked setup cell into an ordinary (unlocked) cell before it. The tests run on the trusted side, which
sees only locked cells, so every test fails with NameError for every student, the solution included.
Through the real command: release refuses in one line naming the test and the cell, and releases nothing;
released anyway (``--unsafe-skip-solution-check``), grading a correct student flags each part
``instructor`` with a message instead of a silent 0. The real course releases (every solution grades full).
"""
import json
import time
from types import SimpleNamespace

import pytest

from course_grader.sandbox import Limits
from tests.grader_helpers import (REPO, grade_notebook, graded_points, needs_bwrap, new_course, reference_answers, run,
                                  student_notebook)

pytestmark = needs_bwrap
A = "output_size"


def unlock_the_import(path):
    nb = json.loads(path.read_text())
    for i, c in enumerate(nb["cells"]):
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "setup-imports":
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            assert "import numpy as np\n" in src
            c["source"] = src.replace("import numpy as np\n", "", 1)
            nb["cells"].insert(i, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                   "source": "import numpy as np\n", "id": "unlocked-setup"})
            path.write_text(json.dumps(nb, indent=1))
            return i + 1  # its 1-based position
    raise AssertionError("no setup-imports cell")


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = new_course(tmp_path_factory, "release_check", [A])
    source_path = root / "solutions" / A / f"{A}.ipynb"
    position = unlock_the_import(source_path)
    refused = run(root, "release", A, ok=False)
    released_after_refusal = (root / "exercises" / A).exists()
    run(root, "release", A, "--unsafe-skip-solution-check")
    source = json.loads(source_path.read_text())
    release = json.loads((root / "exercises" / A / f"{A}.ipynb").read_text())
    d = root / "incoming" / "correct" / A
    d.mkdir(parents=True)
    (d / f"{A}.ipynb").write_text(json.dumps(student_notebook(release, reference_answers(source))))
    run(root, "collect", A, "--from-folder", str(root / "incoming"))
    graded = run(root, "grade", A, "--workers", "1", "--quiet")
    record = json.loads((root / "grader_results" / A / "correct.json").read_text())[A]
    return SimpleNamespace(refused=refused, released_after_refusal=released_after_refusal, graded=graded,
                           record=record, points=graded_points(source), position=position)


def test_release_refuses_in_one_line_naming_the_test_and_the_unlocked_cell(broken):
    proc = broken.refused
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("course-grader: error: release: the solution of output_size"), lines[0]
    assert "test 'test_output_size_seed_table' earns 0 of 3" in lines[0], lines[0]
    assert f"'np' is defined in the unlocked cell {broken.position} of the source notebook" in lines[0], lines[0]
    assert "--unsafe-skip-solution-check" in lines[0] and "released ->" not in proc.stdout
    assert not broken.released_after_refusal


def test_grading_flags_every_part_that_needs_the_unlocked_name(broken):
    record = broken.record
    assert set(record["tests"]) == set(broken.points)
    for gid, t in record["tests"].items():
        assert t["points"] == 0.0, (gid, t)
        assert t["message"].startswith("not graded: the test needs the name 'np'"), t["message"]
        assert "an error in the assignment, not in your answer" in t["message"]
    kinds = [f[0] for f in record["flags"]]
    assert kinds == ["instructor"] * len(broken.points), record["flags"]
    assert {f[1].split("'")[1] for f in record["flags"]} == set(broken.points)
    assert "flagged: correct" in broken.graded.stdout


def test_a_students_own_name_error_is_the_students(tmp_path):
    source = json.loads((REPO / "solutions" / A / f"{A}.ipynb").read_text())
    release = json.loads((REPO / "exercises" / A / f"{A}.ipynb").read_text())
    answers = dict(reference_answers(source), output_size="def output_size(n, k, stride=1, padding=0, dilation=1):\n"
                                                          "    return n_out\n")
    path = tmp_path / f"{A}.ipynb"
    path.write_text(json.dumps(student_notebook(release, answers)))
    result = grade_notebook(source, release, path, Limits(), assignment=A)
    t = result["tests"]["test_output_size_seed_table"]
    assert t["points"] == 0.0 and "your function output_size raised NameError" in t["message"], t
    assert result["flags"] == [], result["flags"]


def test_the_real_course_releases_with_every_solution_checked(tmp_path_factory):
    assignments = sorted(p.parent.name for p in REPO.glob("solutions/[a-z]*/*.ipynb"))
    root = new_course(tmp_path_factory, "release_all", assignments)
    t0 = time.monotonic()
    proc = run(root, "release", "--all")
    seconds = time.monotonic() - t0
    assert [l.split()[1] for l in proc.stdout.splitlines() if l.startswith("released ")] == assignments
    assert proc.stderr.strip() == "", proc.stderr
    print(f"release --all of {len(assignments)} assignments, solutions checked: {seconds:.1f} s")


def _code(source, nbgrader=None, cell_id=None):
    cell = {"cell_type": "code", "execution_count": None, "outputs": [], "source": source,
            "metadata": {"nbgrader": dict(nbgrader, schema_version=3)} if nbgrader else {}}
    if cell_id:
        cell["id"] = cell_id
    return cell


def test_a_student_who_deleted_an_unlocked_instructor_cell_is_told_and_the_part_flagged(tmp_path):
    answer = {"grade": False, "solution": True, "locked": False, "grade_id": "double"}
    test = {"grade": True, "solution": False, "locked": True, "grade_id": "test_double", "points": 2}
    source = {"cells": [_code("SCALE = 2\n", cell_id="scale-cell"),
                        _code("### BEGIN SOLUTION\ndef double(x):\n    return SCALE * x\n### END SOLUTION\n", answer,
                              "double"),
                        _code('"""double doubles."""\nassert double(3) == 6, f"double(3): expected 6, got {double(3)}"\n',
                              test, "test_double")],
              "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    release = json.loads(json.dumps(source))
    release["cells"][1]["source"] = "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    from course_grader import solution_check
    assert solution_check.check_solutions([("tiny", "tiny", source, release)], Limits(cell_timeout=10)) == []
    student = json.loads(json.dumps(release))
    student["cells"][1]["source"] = "def double(x):\n    return SCALE * x\n"
    del student["cells"][0]
    path = tmp_path / "tiny.ipynb"
    path.write_text(json.dumps(student))
    result = grade_notebook(source, release, path, Limits(cell_timeout=10))
    t = result["tests"]["test_double"]
    assert t["points"] == 0.0 and "your function double raised NameError" in t["message"], t
    assert "'SCALE' is defined in cell 1 of the assignment, which your notebook changed or deleted" in t["message"]
    assert result["flags"] == [["instructor", "test 'test_double': the student's notebook lacks 'SCALE', which the "
                                "unlocked cell 1 of the source notebook defines (changed or deleted by the student); "
                                "lock that cell"]], result["flags"]
