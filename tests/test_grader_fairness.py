"""A notebook that timed out while other notebooks were graded beside it is regraded alone (issue 17, point 6).

Through the real `course-grader grade --workers 2`: a student whose answer loops forever is graded
alongside correct students, times out, and is graded once more after the parallel pass, with nothing
else running. The results files' timestamps (work.grade_job records when each grading started and
finished) show it: the first attempt overlapped another student's grading, the final one overlaps none
and starts after every other one finished. With one worker nothing overlaps and nothing is regraded.
"""
import json
from types import SimpleNamespace

import pytest

from course_grader.executors import REGRADED_ALONE
from tests.grader_helpers import FAST, batch_course, needs_bwrap, run

pytestmark = needs_bwrap
STUDENTS = {"a_loop": {"output_size": "while True:\n    pass\n"}, "b": "correct", "c": "correct", "d": "correct"}


def records(root):
    return {s: json.loads((root / "grader_results" / FAST / f"{s}.json").read_text())[FAST] for s in STUDENTS}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root, _ = batch_course(tmp_path_factory, "fairness", STUDENTS)
    parallel = run(root, "grade", FAST, "--workers", "2", "--cell-timeout", "2", "--quiet")
    first = records(root)
    serial = run(root, "grade", FAST, "--workers", "1", "--cell-timeout", "2", "--quiet", "--force")
    return SimpleNamespace(parallel=first, serial=records(root), out=parallel.stdout + serial.stdout)


def interval(timings):
    return timings["started"], timings["finished"]


def overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_the_first_attempt_ran_alongside_another_notebook(graded):
    loop = graded.parallel["a_loop"]["timings"]
    assert loop.get("regraded_alone") is True, loop
    first = interval(loop["first_attempt"])
    others = [interval(graded.parallel[s]["timings"]) for s in STUDENTS if s != "a_loop"]
    assert any(overlap(first, o) for o in others), (first, others)
    assert any(f[0] == "timeout" for f in loop["first_attempt"]["flags"])


def test_the_final_grade_comes_from_a_run_with_nothing_else_running(graded):
    record = graded.parallel["a_loop"]
    final = interval(record["timings"])
    others = [interval(graded.parallel[s]["timings"]) for s in STUDENTS if s != "a_loop"]
    assert not any(overlap(final, o) for o in others), (final, others)
    assert final[0] >= max(o[1] for o in others)
    assert REGRADED_ALONE in record["messages"], record["messages"]
    timeouts = [f for f in record["flags"] if f[0] == "timeout"]
    assert timeouts and all(f[1].endswith("(also when regraded alone)") for f in timeouts), record["flags"]


def test_notebooks_that_did_not_time_out_are_graded_once(graded):
    for s in ("b", "c", "d"):
        record = graded.parallel[s]
        assert "regraded_alone" not in record["timings"] and REGRADED_ALONE not in record["messages"]
        assert record["flags"] == [] and record["score"] == record["max_score"]


def test_one_worker_overlaps_nothing_and_regrades_nothing(graded):
    loop = graded.serial["a_loop"]
    assert any(f[0] == "timeout" for f in loop["flags"])
    assert "regraded_alone" not in loop["timings"] and REGRADED_ALONE not in loop["messages"]
    spans = sorted(interval(graded.serial[s]["timings"]) for s in STUDENTS)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    # the same points whether or not it was first graded under load
    points = {g: t["points"] for g, t in loop["tests"].items()}
    assert points == {g: t["points"] for g, t in graded.parallel["a_loop"]["tests"].items()}
