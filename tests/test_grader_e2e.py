"""End to end: the `course-grader` command on a temporary course with the real conv2d assignment,
on a SQLite gradebook and on a PostgreSQL one (a throwaway server, tests/postgres_server.py).

release -> five synthetic students (correct, partial, blank, broken JSON, infinite loop) ->
collect -> grade with 1 and 2 workers (identical grades) -> feedback (no hidden-test source)
-> export -> report -> re-grade one student without disturbing the others; then two `grade`
commands on different assignments at once while `export` reads, on both databases.
Expected scores are computed from the source notebook's own points, per graded part.
"""
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.grader_helpers import (CLI, REPO, cell_text, flipped_conv2d, graded_points, needs_bwrap, new_course, read_csv,
                                  reference_answers, run, student_notebook)

ASSIGNMENT = "conv2d"
SOURCE = REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

pytestmark = needs_bwrap


def parts_table(course):
    return {(r["student_id"], r["grade_id"]): float(r["score"]) for r in read_csv(course / "export" / "parts.csv")}


DATABASES = [pytest.param("sqlite", marks=pytest.mark.xdist_group("e2e-sqlite")),
             pytest.param("postgresql", marks=pytest.mark.xdist_group("e2e-postgresql"))]


def use_database(root, kind, request):
    """Point the course at a new gradebook: nbgrader's default SQLite file, or a fresh PostgreSQL database
    (set in nbgrader_config.py, so every `course-grader` and nbgrader command of the course uses it)."""
    if kind == "postgresql":
        url = request.getfixturevalue("postgres").create_database()
        with open(root / "nbgrader_config.py", "a") as f:
            f.write(f"\nc.CourseDirectory.db_url = {url!r}\n")


@pytest.fixture(scope="module", params=DATABASES)
def course(tmp_path_factory, request):
    root = new_course(tmp_path_factory, f"course-{request.param}", [ASSIGNMENT])
    use_database(root, request.param, request)
    run(root, "release", "--all")
    source_nb = json.loads(SOURCE.read_text())
    release_nb = json.loads((root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    sol = reference_answers(source_nb)
    points = graded_points(source_nb)
    incoming = root / "incoming"

    def put(student, nb=None, raw=None):
        d = incoming / student / ASSIGNMENT
        d.mkdir(parents=True)
        (d / f"{ASSIGNMENT}.ipynb").write_text(raw if raw is not None else json.dumps(nb))

    put("correct", student_notebook(release_nb, sol))
    put("partial", student_notebook(release_nb, {**sol, "conv2d": flipped_conv2d(sol["conv2d"])}))
    put("blank", release_nb)
    put("broken", raw=json.dumps(student_notebook(release_nb, sol))[:700])
    put("loop", student_notebook(release_nb, {**sol, "conv2d": "while True:\n    pass\n"}))
    (incoming / "stray.ipynb").write_text("{}")
    conv_tests = [g for g in points if "conv2d" in g and "params" not in g and "cross" not in g]
    cross = [g for g in points if "cross_correlate" in g]
    params = [g for g in points if "params" in g]
    assert conv_tests and cross and params, f"unexpected graded parts: {sorted(points)}"
    expected = {
        "correct": dict(points),
        "partial": {g: (0.0 if g in conv_tests else p) for g, p in points.items()},
        "blank": {g: 0.0 for g in points},
        "broken": {g: 0.0 for g in points},
        # the loop is in the conv2d answer: the parts that use conv2d lose their points, the others keep them
        "loop": {g: (0.0 if g in conv_tests else p) for g, p in points.items()},
    }
    return {"root": root, "source": source_nb, "release": release_nb, "points": points, "expected": expected,
            "sol": sol}


def test_release_hides_solutions_and_hidden_tests(course):
    text = (course["root"] / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "NotImplementedError" in text


def test_collect_places_students_and_reports_strays(course):
    proc = run(course["root"], "collect", ASSIGNMENT, "--from-folder", str(course["root"] / "incoming"))
    submitted = sorted(p.name for p in (course["root"] / "submitted").iterdir())
    assert submitted == ["blank", "broken", "correct", "loop", "partial"]
    assert "stray.ipynb" in proc.stderr and "could not place" in proc.stderr
    assert (course["root"] / "submitted" / "correct" / ASSIGNMENT / "timestamp.txt").exists()


def test_grade_serial_and_parallel_agree(course):
    root = course["root"]
    serial = run(root, "grade", ASSIGNMENT, "--workers", "1", "--cell-timeout", "3")
    assert re.search(r"graded 4 student\(s\), failed 1, flagged 2", serial.stdout), serial.stdout
    assert "ETA" in serial.stderr  # the progress bar
    run(root, "export", "--per-part")
    first = parts_table(root)
    for student, parts in course["expected"].items():
        for gid, pts in parts.items():
            assert first[(student, gid)] == pts, f"{student} {gid}: got {first[(student, gid)]}, expected {pts}"
    parallel = run(root, "grade", ASSIGNMENT, "--workers", "2", "--cell-timeout", "3", "--force")
    assert "failed 1, flagged 2" in parallel.stdout
    run(root, "export", "--per-part")
    assert parts_table(root) == first
    results = json.loads((root / "grader_results" / ASSIGNMENT / "loop.json").read_text())[ASSIGNMENT]
    assert [f[0] for f in results["flags"]] == ["timeout"]
    broken = json.loads((root / "grader_results" / ASSIGNMENT / "broken.json").read_text())[ASSIGNMENT]
    assert broken["status"] == "failed" and "not valid JSON" in broken["messages"][0]


def test_feedback_has_no_hidden_tests(course):
    root = course["root"]
    run(root, "feedback", ASSIGNMENT)
    hidden_lines = set()
    for c in course["source"]["cells"]:
        inside = False
        for line in cell_text(c).splitlines():
            if "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                hidden_lines.add(line.strip())
    assert hidden_lines
    for student in course["expected"]:
        page = (root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        for line in hidden_lines:
            assert line not in text, f"hidden test line leaked into {student}'s feedback: {line}"
        assert "BEGIN HIDDEN TESTS" not in text
    partial = html.unescape(re.sub(r"<[^>]+>", "", (root / "feedback" / "partial" / ASSIGNMENT /
                                                     f"{ASSIGNMENT}.html").read_text()))
    assert "values differ" in partial  # the visible test's message
    # the student's answer is shown
    assert "_conv2d_cross(x, np.asarray(w)[..., ::-1, ::-1]" in partial
    broken = (root / "feedback" / "broken" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "not valid JSON" in broken


def test_export_csv(course):
    root = course["root"]  # written by the parallel grade's export above
    students = {r["student_id"]: r for r in read_csv(root / "export" / "students.csv")}
    per_assignment = {r["student_id"]: r for r in read_csv(root / "export" / "assignments.csv")}
    total = sum(course["points"].values())
    for student, parts in course["expected"].items():
        assert float(students[student][ASSIGNMENT]) == sum(parts.values())
        assert float(per_assignment[student]["score"]) == sum(parts.values())
        assert float(per_assignment[student]["max_score"]) == total


def test_report(course):
    root = course["root"]
    run(root, "report", ASSIGNMENT)
    out = root / "reports" / ASSIGNMENT
    for png in ("score_histogram.png", "pass_rate.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    assert "Students graded: <b>5</b>" in page
    scores = [sum(p.values()) for p in course["expected"].values()]
    assert f"mean <b>{sum(scores) / len(scores):.2f}</b>" in page
    flagged = page.split('id="flagged"')[1].split("</table>")[0]
    assert "loop" in flagged and "broken" in flagged and "timeout" in flagged and "correct" not in flagged
    parts = page.split('id="parts"')[1].split("</table>")[0]
    for gid in course["points"]:
        passed = sum(1 for s in course["expected"].values() if s[gid] == course["points"][gid])
        row = re.search(rf"<code>{gid}</code></td><td>[^<]*</td><td>(\d+)</td><td>(\d+)</td>", parts)
        assert row and (int(row.group(1)), int(row.group(2))) == (passed, 5), (gid, row and row.groups())
    failures = page.split('id="failures"')[1].split("</table>")[0]
    assert "wrong values" in failures  # a message's first line: the case and the kind of failure


def test_regrade_one_student_leaves_others(course):
    root = course["root"]
    before = parts_table(root)
    nb = student_notebook(course["release"], course["sol"])
    (root / "submitted" / "partial" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
    stamp_other = (root / "autograded" / "blank" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").stat().st_mtime_ns
    run(root, "grade", ASSIGNMENT, "--student", "partial", "--workers", "2")
    run(root, "export", "--per-part")
    after = parts_table(root)
    for (student, gid), pts in before.items():
        if student == "partial":
            assert after[(student, gid)] == course["points"][gid]
        else:
            assert after[(student, gid)] == pts
    assert (root / "autograded" / "blank" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").stat().st_mtime_ns == stamp_other
    missing = run(root, "grade", ASSIGNMENT, "--student", "nobody", ok=False)
    assert missing.returncode == 2 and "no submission" in missing.stderr


def test_collect_from_lms_zip(course, tmp_path):
    """nbgrader zip_collect: LMS-style names and <student>/<assignment>/ paths; strays are reported."""
    import zipfile
    root = course["root"]
    good = json.dumps(student_notebook(course["release"], course["sol"]))
    archive = tmp_path / "lms_download.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"zoe/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", good)
        z.writestr(f"{ASSIGNMENT}_max_attempt_2026-11-20-10-00-00_{ASSIGNMENT}.ipynb", good)
        z.writestr("readme.txt", "not a submission")
    proc = run(root, "collect", ASSIGNMENT, "--from-zip", str(archive))
    assert (root / "submitted" / "zoe" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()
    assert (root / "submitted" / "max" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()
    assert "2026-11-20 10:00:00" in (root / "submitted" / "max" / ASSIGNMENT / "timestamp.txt").read_text()
    assert "could not place" in proc.stderr and "readme.txt" in proc.stderr
    run(root, "grade", ASSIGNMENT, "--student", "zoe", "--student", "max")
    run(root, "export")
    scores = {r["student_id"]: float(r["score"]) for r in read_csv(root / "export" / "assignments.csv")}
    assert scores["zoe"] == scores["max"] == sum(course["points"].values())


def test_release_to_exchange_and_collect(course, tmp_path):
    """nbgrader's exchange: release_assignment, a student fetches and submits, collect --exchange."""
    root = course["root"]
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    run(root, "release", ASSIGNMENT, "--to-exchange")
    home = tmp_path / "student_home"
    home.mkdir()
    nbgrader = [sys.executable, "-m", "nbgrader"]
    opts = ["--course", "convolution-derived", f"--Exchange.root={exchange}"]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for step in (["fetch_assignment", ASSIGNMENT], ["submit", ASSIGNMENT]):
        if step[0] == "submit":
            nb = student_notebook(course["release"], course["sol"])
            (home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb))
        proc = subprocess.run(nbgrader + step + opts, cwd=home, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
    run(root, "collect", ASSIGNMENT, "--exchange")
    me = os.environ.get("USER") or __import__("getpass").getuser()
    assert (root / "submitted" / me / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()


SECOND = "output_size"  # a second assignment graded at the same time as conv2d


def concurrent_course(tmp_path_factory, request, kind):
    """A course with conv2d and SECOND released and four students' submissions of both collected;
    returns (root, expected): (student, assignment, grade_id) -> points, from the source notebooks."""
    root = new_course(tmp_path_factory, f"concurrent-{kind}", [ASSIGNMENT, SECOND])
    use_database(root, kind, request)
    run(root, "release", "--all")
    incoming, expected = root / "incoming", {}
    for a in (ASSIGNMENT, SECOND):
        source = json.loads((REPO / "solutions" / a / f"{a}.ipynb").read_text())
        release = json.loads((root / "exercises" / a / f"{a}.ipynb").read_text())
        sol, points = reference_answers(source), graded_points(source)
        # ann and cy answer everything; bo hands in the blank notebook for conv2d; di for SECOND
        for student in ("ann", "bo", "cy", "di"):
            blank = (student, a) in {("bo", ASSIGNMENT), ("di", SECOND)}
            d = incoming / student / a
            d.mkdir(parents=True)
            (d / f"{a}.ipynb").write_text(json.dumps(release if blank else student_notebook(release, sol)))
            for gid, p in points.items():
                expected[(student, a, gid)] = 0.0 if blank else p
        run(root, "collect", a, "--from-folder", str(incoming))
    return root, expected


def parts_rows(root):
    return [((r["student_id"], r["assignment"], r["grade_id"]), float(r["score"]))
            for r in read_csv(root / "export" / "parts.csv")]


def grade_two_at_once_while_exporting(root, expected):
    """Two `grade` commands (conv2d, SECOND) at the same time while `export` runs in a loop; asserts
    every command succeeded, no export saw a half-written submission, and every grade is there
    exactly once. Returns the final per-part table."""
    totals = {}
    for (student, a, _), p in expected.items():
        totals[(student, a)] = totals.get((student, a), 0.0) + p
    cmds = [[CLI, "--course-dir", str(root), "grade", a, "--workers", "1", "--quiet"] for a in (ASSIGNMENT, SECOND)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    exports_during = 0
    try:
        while any(p.poll() is None for p in procs):
            proc = run(root, "export", "--out", str(root / "snap"))
            exports_during += 1
            for r in read_csv(root / "snap" / "assignments.csv"):
                key = (r["student_id"], r["assignment"])
                # before, not yet graded (0) or graded: never part of a notebook's grades
                assert r["score"] in ("", "0") or float(r["score"]) == totals[key], (key, r["score"], totals[key])
            time.sleep(0.2)
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for c, p, (out, err) in zip(cmds, procs, outs):
        assert p.returncode == 0, f"{' '.join(c[3:])} failed:\n{out}\n{err[-3000:]}"
        assert "graded 4 student(s), failed 0" in out, out
    assert exports_during >= 1
    run(root, "export", "--per-part")
    rows = parts_rows(root)
    keys = [k for k, _ in rows]
    assert len(keys) == len(set(keys)), "a grade is in the gradebook twice"
    table = dict(rows)
    assert set(table) == set(expected), (sorted(set(expected) - set(table)), sorted(set(table) - set(expected)))
    for key, pts in expected.items():
        assert table[key] == pts, f"{key}: got {table[key]}, expected {pts}"
    return table


@pytest.mark.xdist_group("e2e-concurrent")
def test_two_grades_at_once_and_export_on_sqlite_and_postgresql(tmp_path_factory, request):
    tables = {}
    for kind in ("sqlite", "postgresql"):
        root, expected = concurrent_course(tmp_path_factory, request, kind)
        tables[kind] = grade_two_at_once_while_exporting(root, expected)
    assert tables["sqlite"] == tables["postgresql"]
