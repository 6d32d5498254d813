"""An interrupted `course-grader grade` resumes: SIGINT or SIGTERM sent by pid mid-batch stops it between
two writes (exit status 128 + signal); the same command again grades only the notebooks not yet written;
nothing is ever counted twice. A changed submission is regraded (content hash), --force regrades all.
"""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.grader_helpers import (CLI, FAST, assert_each_grade_once, batch_course, graded_parts, marker_cell,
                                  needs_bwrap, reference_answers, run, student_notebook, REPO)

pytestmark = needs_bwrap

N = 6


def graded_now(proc):
    m = re.search(r"^(\d+) notebook\(s\) graded now", proc.stdout, re.M)
    assert m, proc.stdout
    return int(m.group(1))


def results_written(root):
    folder = root / "grader_results" / FAST
    return sorted(p.stem for p in folder.glob("*.json")) if folder.exists() else []


@pytest.fixture(scope="module", params=["SIGINT", "SIGTERM"])
def interrupted(tmp_path_factory, request):
    """A batch of N slow notebooks (one worker), stopped by the signal once two are written."""
    slow = {"output_size": marker_cell(f"cg-resume-{os.getpid()}", 1.5)}
    students = {f"s{i}": ("blank" if i == 2 else slow) for i in range(N)}
    root, expected = batch_course(tmp_path_factory, f"resume-{request.param}", students)
    proc = subprocess.Popen([CLI, "--course-dir", str(root), "grade", FAST, "--workers", "1", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while len(results_written(root)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, request.param))
    out, err = proc.communicate(timeout=120)
    return {"root": root, "expected": expected, "signal": getattr(signal, request.param), "rc": proc.returncode,
            "stdout": out, "stderr": err, "written": results_written(root)}


def test_the_signal_stops_the_batch_between_writes(interrupted):
    assert interrupted["rc"] == 128 + interrupted["signal"], interrupted["stderr"][-2000:]
    name = signal.Signals(interrupted["signal"]).name
    lines = interrupted["stderr"].strip().splitlines()
    assert lines[-1].startswith(f"course-grader: interrupted by {name} after writing "), lines[-1]
    assert "Traceback" not in interrupted["stderr"]
    assert 2 <= len(interrupted["written"]) < N
    # the grades written so far are complete and in the gradebook once
    rows = graded_parts(interrupted["root"], "snap")
    done = {k: v for k, v in interrupted["expected"].items() if k[0] in interrupted["written"]}
    assert_each_grade_once([r for r in rows if r[0][0] in interrupted["written"]], done)


def test_rerun_grades_only_what_is_missing(interrupted):
    root = interrupted["root"]
    mtimes = {s: (root / "autograded" / s / FAST / f"{FAST}.ipynb").stat().st_mtime_ns for s in interrupted["written"]}
    proc = run(root, "grade", FAST, "--workers", "2", "--quiet")
    assert graded_now(proc) == N - len(interrupted["written"])
    assert f"{len(interrupted['written'])} unchanged since they were graded, kept" in proc.stdout
    assert f"graded {N} student(s), failed 0" in proc.stdout  # the summary covers the kept notebooks too
    for s, m in mtimes.items():
        assert (root / "autograded" / s / FAST / f"{FAST}.ipynb").stat().st_mtime_ns == m, s
    assert_each_grade_once(graded_parts(root), interrupted["expected"])
    again = run(root, "grade", FAST, "--quiet")
    assert graded_now(again) == 0


def test_a_changed_submission_is_regraded_and_force_regrades_all(interrupted):
    root, expected = interrupted["root"], dict(interrupted["expected"])
    source = json.loads((REPO / "solutions" / FAST / f"{FAST}.ipynb").read_text())
    release = json.loads((root / "exercises" / FAST / f"{FAST}.ipynb").read_text())
    (root / "submitted" / "s2" / FAST / f"{FAST}.ipynb").write_text(
        json.dumps(student_notebook(release, reference_answers(source))))
    proc = run(root, "grade", FAST, "--quiet")
    assert graded_now(proc) == 1
    for (s, gid) in [k for k in expected if k[0] == "s2"]:
        expected[(s, gid)] = [p for (t, g), p in interrupted["expected"].items() if g == gid and t == "s0"][0]
    assert_each_grade_once(graded_parts(root), expected)
    forced = run(root, "grade", FAST, "--force", "--quiet")
    assert graded_now(forced) == N and "unchanged" not in forced.stdout
    assert_each_grade_once(graded_parts(root), expected)
