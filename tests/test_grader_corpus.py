"""The honest grader against a corpus of bad submissions (issue 7), through the real `course-grader`.

tests/grader_corpus/cases.py is the declarative table: one case per bad submission (isolation,
integrity of the tests, forged results, cnnmath, broken notebooks, dying kernels, stderr,
hard-coded answers, misconceptions) plus two honest students per assignment. All of them are
generated from the real released notebooks of conv2d, output_size and conv_backward into a
temporary course, collected, and graded in ONE batch per assignment with 2 workers. Then:
every case gets exactly its expected points per graded part and exactly its expected flags,
the honest students are graded exactly right, nothing escaped the sandbox (files, network,
processes), the feedback names each misconception and the class report counts them.
"""
import csv
import functools
import html
import json
import os
import re
import socket
import subprocess
import time
from types import SimpleNamespace

import pytest

from tests.grader_corpus.cases import ASSIGNMENTS, CASES, write_case
from tests.grader_helpers import REPO, cell_text, graded_points, needs_bwrap, new_course, reference_answers
from tests.grader_helpers import run as _run
from course_grader.formula_misconceptions import FORMULA_SENTENCES
from course_grader.invariance_misconceptions import INVARIANCE_SENTENCES
from course_grader.efficient_misconceptions import EFFICIENT_SENTENCES
from course_grader.misconceptions import SENTENCES

MARKER = "cg-corpus-orphan-%d" % os.getpid()

pytestmark = [pytest.mark.slow, needs_bwrap]
run = functools.partial(_run, timeout=900)   # one batch grades the whole corpus


def host_ips():
    ips = set()
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
        ips.update(ip for ip in out if ":" not in ip)
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(ips)[:3]


def marker_processes(marker):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = new_course(tmp_path_factory, "corpus_course", ASSIGNMENTS)
    run(root, "release", "--all")
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(16)
    listener.setblocking(False)
    ctx = SimpleNamespace(root=str(root), repo=str(REPO), port=listener.getsockname()[1], host_ips=host_ips(),
                          marker=lambda name: f"{MARKER}-{name}", release={}, sol={}, points={})
    for a in ASSIGNMENTS:
        source = json.loads((root / "solutions" / a / f"{a}.ipynb").read_text())
        release = json.loads((root / "exercises" / a / f"{a}.ipynb").read_text())
        for c in release["cells"]:
            c["source"] = cell_text(c)
        ctx.release[a] = release
        ctx.sol[a] = reference_answers(source)
        ctx.points[a] = graded_points(source)
    incoming = root / "incoming"
    for case in CASES:
        write_case(case, ctx, incoming)
    grade_out = {}
    t0 = time.monotonic()
    for a in ASSIGNMENTS:
        run(root, "collect", a, "--from-folder", str(incoming))
        grade_out[a] = run(root, "grade", a, "--workers", "2", "--cell-timeout", "5", "--notebook-timeout", "60",
                           "--memory-mb", "768", "--quiet")
    grading_seconds = time.monotonic() - t0
    survivors = marker_processes(MARKER)
    try:
        conn, _ = listener.accept()
        conn.close()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    run(root, "export", "--per-part")
    for a in ASSIGNMENTS:
        students = [c.name for c in FEEDBACK if c.assignment == a]
        run(root, "feedback", a, *[arg for s in students for arg in ("--student", s)])
        run(root, "report", a)
    with open(root / "export" / "parts.csv", newline="") as f:
        parts = {(r["student_id"], r["assignment"], r["grade_id"]): float(r["score"]) for r in csv.DictReader(f)}
    with open(root / "export" / "assignments.csv", newline="") as f:
        totals = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    yield SimpleNamespace(root=root, ctx=ctx, parts=parts, totals=totals, grade_out=grade_out,
                          survivors=survivors, reached=reached, seconds=grading_seconds)
    for pid in marker_processes(MARKER):   # never leave a stray process behind, even on failure
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def record(corpus, case):
    path = corpus.root / "grader_results" / case.assignment / f"{case.name}.json"
    assert path.exists(), f"{case.name}: the grader left no result"
    return json.loads(path.read_text())[case.assignment]


BAD = [c for c in CASES if not c.honest]
# feedback is generated for these (all of them would take too long for one test run)
FEEDBACK = [c for c in CASES if c.honest or c.name.startswith("m_") or c.extra.get("feedback")
            or c.name in ("invalid_json", "utf16", "latin1", "lone_surrogate", "garbage_cells", "odd_sources",
                          "fork_bomb", "os_exit_midway", "forged_kernel_reply")]


def test_the_corpus_covers_every_class():
    assert len(BAD) >= 25
    names = {c.name for c in BAD}
    for needed in ("read_solutions", "read_gradebook", "read_other_student", "write_outside", "network",
                   "orphan_child", "fork_bomb", "memory_hog", "infinite_loop", "huge_output",
                   "deleted_test", "edited_tests", "renamed_test", "duplicated_test", "retyped_tests",
                   "altered_points", "extra_grade_cells", "bad_nbgrader_metadata", "forged_patch_numpy",
                   "forged_patch_helpers", "forged_ndarray_subclass", "forged_always_equal",
                   "forged_ipython_transformers", "forged_custom_exc", "forged_sys_exit", "forged_kernel_reply",
                   "shadowed_modules", "import_cnnmath", "import_cnnmath_string_tricks", "copied_cnnmath",
                   "invalid_json", "empty_file", "wrong_nbformat", "utf16", "latin1", "utf8_bom",
                   "wrong_file_name", "unknown_kernel", "os_exit_midway", "stderr_output", "hardcoded_visible"):
        assert needed in names, needed
    # the derivations/activations_losses keys are run end to end by tests/test_derivations.py, the
    # aliasing_gp_invertibility ones by tests/test_invariance_misconceptions.py, the efficient_counting
    # ones by tests/test_efficient_misconceptions.py
    assert {c.misconception for c in CASES if c.misconception} == \
        set(SENTENCES) - set(FORMULA_SENTENCES) - set(INVARIANCE_SENTENCES) - set(EFFICIENT_SENTENCES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_scores_and_flags(corpus, case):
    points = corpus.ctx.points[case.assignment]
    assert set(case.lost) <= set(points), f"unknown graded parts in {case.name}: {set(case.lost) - set(points)}"
    res = record(corpus, case)
    got = {gid: corpus.parts[(case.name, case.assignment, gid)] for gid in points}
    expected = {gid: (0.0 if gid in case.lost else p) for gid, p in points.items()}
    assert got == expected, f"{case.name}: per-part scores {got}, expected {expected}\n{json.dumps(res, indent=1)[:3000]}"
    row = corpus.totals[(case.name, case.assignment)]
    assert float(row["score"]) == sum(expected.values())
    assert float(row["max_score"]) == sum(points.values())   # altered points never change the maximum
    kinds = {f[0] for f in res["flags"]}
    assert kinds == set(case.flags), f"{case.name}: flags {res['flags']}, expected kinds {set(case.flags)}"
    if case.message:
        assert any(case.message in m for m in res["messages"]), (case.name, res["messages"])
    if case.flags == {"broken"}:
        assert res["status"] == "failed"
    named = {t.get("misconception") for t in res["tests"].values()} - {None}
    if case.misconception:
        assert named == {case.misconception}, f"{case.name}: misconceptions named {named}"
    elif case.honest:
        assert not named


def test_honest_students_exact_and_batch_never_stops(corpus):
    for a in ASSIGNMENTS:
        out = corpus.grade_out[a].stdout
        n = sum(1 for c in CASES if c.assignment == a)
        m = re.search(r"graded (\d+) student\(s\), failed (\d+), flagged (\d+)", out)
        assert m and int(m.group(1)) + int(m.group(2)) == n, out
        for c in CASES:
            if c.assignment == a:
                assert (corpus.root / "autograded" / c.name / a).is_dir(), f"{c.name} was not graded"
    for case in (c for c in CASES if c.honest):
        res = record(corpus, case)
        assert res["status"] == "graded" and res["flags"] == [], (case.name, res["flags"])
        full = sum(corpus.ctx.points[case.assignment].values())
        lost = sum(corpus.ctx.points[case.assignment][g] for g in case.lost)
        assert float(corpus.totals[(case.name, case.assignment)]["score"]) == full - lost


def test_nothing_escaped_the_sandbox(corpus):
    root = corpus.root
    assert not list(root.rglob("pwned*")), "a submission wrote outside its scratch folder"
    assert not (root / "late-orphan_child.txt").exists()
    assert corpus.survivors == [], f"processes started by a submission outlived the grading: {corpus.survivors}"
    assert not corpus.reached, "a submission reached the network"
    # the gradebook is intact
    conn = __import__("sqlite3").connect(root / "gradebook.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


@pytest.mark.parametrize("case", [c for c in CASES if c.misconception and c.name.startswith("m_")],
                         ids=lambda c: c.name)
def test_feedback_names_the_misconception(corpus, case):
    page = (corpus.root / "feedback" / case.name / case.assignment / f"{case.assignment}.html").read_text()
    plain = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert SENTENCES[case.misconception] in plain
    others = [k for k in SENTENCES if k != case.misconception and SENTENCES[k] in plain]
    assert not others, f"{case.name}: feedback also names {others}"


def test_report_counts_misconceptions(corpus):
    for a in ASSIGNMENTS:
        page = (corpus.root / "reports" / a / "index.html").read_text()
        table = page.split('id="misconceptions"')[1].split("</table>")[0]
        expected = {}
        for c in CASES:
            if c.assignment == a and c.misconception:
                expected[c.misconception] = expected.get(c.misconception, 0) + 1
        rows = dict(re.findall(r'<code>(\w+)</code></td><td class="count">(\d+)</td>', table))
        assert {k: int(v) for k, v in rows.items()} == expected, (a, rows)


@pytest.mark.parametrize("case", FEEDBACK, ids=lambda c: c.name)
def test_feedback_is_written_without_hidden_tests(corpus, case):
    page = (corpus.root / "feedback" / case.name / case.assignment / f"{case.assignment}.html").read_text()
    plain = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "BEGIN HIDDEN TESTS" not in plain
    source = json.loads((corpus.root / "solutions" / case.assignment / f"{case.assignment}.ipynb").read_text())
    for cell in source["cells"]:
        inside = False
        for line in cell_text(cell).splitlines():
            if "### BEGIN HIDDEN TESTS" in line or "### END HIDDEN TESTS" in line:
                inside = "BEGIN" in line
            elif inside and len(line.strip()) > 20:
                assert line.strip() not in plain, f"hidden test line in {case.name}'s feedback: {line.strip()}"
    res = record(corpus, case)
    for gid, t in res["tests"].items():
        if not t["passed"]:
            first = t["message"].splitlines()[0]
            assert html.unescape(first) in plain or first in plain, f"{case.name}: message of {gid} not shown"
