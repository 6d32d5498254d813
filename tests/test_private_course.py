"""The instructor's documented workflow in a private course directory, end to end, through the command.

`course-grader init DIR` -> inside DIR, with no --course-dir (the documented default): release ->
collect -> grade -> feedback -> export (native, Canvas and Moodle CSVs). Scores are checked against the
source notebook's own points; the Canvas and Moodle files against the columns their import
documentation names; and nothing is written into the public repository.
"""
import csv
import json
import subprocess

import pytest

from tests.grader_helpers import (CLI, REPO, flipped_conv2d, graded_points, needs_bwrap, read_csv, reference_answers,
                                  student_notebook)

pytestmark = needs_bwrap
ASSIGNMENT = "conv2d"
STUDENT_DATA = ["submitted", "autograded", "feedback", "grader_results", "export", "reports", "downloaded",
                "release", "source", "gradebook.db"]
# Canvas, "How do I import grades in the Gradebook?": the identity columns of the gradebook CSV, then
# one column per assignment; its export puts a "Points Possible" row first.
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
# Moodle, "Grade import" (CSV): users are identified by a column mapped to username, ID number or email.
MOODLE_IDENTIFIERS = {"Username", "ID number", "Email address"}


def command(cwd, *args, ok=True):
    proc = subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, f"course-grader {' '.join(args)}:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def repo_state():
    status = subprocess.run(["git", "status", "--porcelain", "--ignored", "--", "solutions", "exercises",
                             *STUDENT_DATA], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return status, sorted(p for p in STUDENT_DATA if (REPO / p).exists())


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    before = repo_state()
    base = tmp_path_factory.mktemp("instructor")
    course = base / "course"
    command(base, "init", "course")
    command(course, "release", ASSIGNMENT)
    source = json.loads((course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    release = json.loads((course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    sol = reference_answers(source)
    incoming = base / "incoming"
    for student, nb in {"ada": student_notebook(release, sol),
                        "bob": student_notebook(release, {**sol, "conv2d": flipped_conv2d(sol["conv2d"])})}.items():
        (incoming / student / ASSIGNMENT).mkdir(parents=True)
        (incoming / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
    steps = {"collect": command(course, "collect", ASSIGNMENT, "--from-folder", str(incoming)),
             "grade": command(course, "grade", ASSIGNMENT, "--workers", "2", "--quiet"),
             "feedback": command(course, "feedback", ASSIGNMENT),
             "export": command(course, "export", "--per-part", "--format", "canvas", "--format", "moodle")}
    return {"course": course, "source": source, "steps": steps, "before": before, "after": repo_state()}


def test_init_layout(workflow):
    course = workflow["course"]
    assert (course / "nbgrader_config.py").is_file()
    assignments = sorted(d.name for d in (REPO / "solutions").iterdir() if d.is_dir() and any(d.glob("*.ipynb")))
    assert sorted(d.name for d in (course / "source").iterdir()) == assignments
    ignored = (course / ".gitignore").read_text().split()
    assert {"submitted/", "autograded/", "feedback/", "grader_results/", "export/", "gradebook.db*"} <= set(ignored)


def test_scores_match_the_source_points(workflow):
    points = graded_points(workflow["source"])
    conv_tests = {g for g in points if "conv2d" in g and "params" not in g and "cross" not in g}
    assert conv_tests, sorted(points)
    expected = {("ada", g): p for g, p in points.items()}
    expected.update({("bob", g): (0.0 if g in conv_tests else p) for g, p in points.items()})
    parts = {(r["student_id"], r["grade_id"]): float(r["score"])
             for r in read_csv(workflow["course"] / "export" / "parts.csv")}
    assert parts == expected
    totals = {r["student_id"]: float(r["total"]) for r in read_csv(workflow["course"] / "export" / "students.csv")}
    assert totals == {s: sum(v for (st, _), v in expected.items() if st == s) for s in ("ada", "bob")}


def test_canvas_import_file(workflow):
    with open(workflow["course"] / "export" / "canvas.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CANVAS_COLUMNS + [ASSIGNMENT]
    assert rows[1][0] == "Points Possible" and float(rows[1][5]) == sum(graded_points(workflow["source"]).values())
    by_sis = {r[2]: r for r in rows[2:]}
    totals = {r["student_id"]: r["total"] for r in read_csv(workflow["course"] / "export" / "students.csv")}
    assert sorted(by_sis) == ["ada", "bob"]
    assert {s: float(r[5]) for s, r in by_sis.items()} == {s: float(t) for s, t in totals.items()}


def test_canvas_ids_name_the_columns(workflow):
    course = workflow["course"]
    command(course, "export", "--format", "canvas", "--canvas-id", f"{ASSIGNMENT}=4711", "--out", "canvas-ids")
    with open(course / "canvas-ids" / "canvas.csv", newline="") as f:
        assert next(csv.reader(f)) == CANVAS_COLUMNS + [f"{ASSIGNMENT} (4711)"]
    bad = command(course, "export", "--canvas-id", "nosuch=1", ok=False)
    assert bad.returncode == 2
    assert bad.stderr == "course-grader: error: --canvas-id names an assignment that is not in the gradebook: nosuch\n"


def test_moodle_import_file(workflow):
    rows = read_csv(workflow["course"] / "export" / "moodle.csv")
    header = list(rows[0])
    assert MOODLE_IDENTIFIERS <= set(header) and header[-1] == ASSIGNMENT
    totals = {r["student_id"]: float(r["total"]) for r in read_csv(workflow["course"] / "export" / "students.csv")}
    assert {r["Username"]: float(r[ASSIGNMENT]) for r in rows} == totals


def test_feedback_ships_mathjax(workflow):
    for student in ("ada", "bob"):
        folder = workflow["course"] / "feedback" / student / ASSIGNMENT
        assert (folder / f"{ASSIGNMENT}.html").is_file()
        assert (folder / "_mathjax" / "tex-mml-chtml.js").is_file()


def test_nothing_written_into_the_repository(workflow):
    assert workflow["after"] == workflow["before"]


def test_init_refuses_a_directory_inside_the_repository(tmp_path):
    proc = command(tmp_path, "init", str(REPO / "private-course"), ok=False)
    assert proc.returncode == 2
    assert proc.stderr == (f"course-grader: error: init: {REPO / 'private-course'} is inside the public repository "
                           f"{REPO}; choose a private directory outside it (student data must not be one `git add` "
                           "away)\n")
    assert not (REPO / "private-course").exists()
