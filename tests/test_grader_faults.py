"""Faults in a grading batch, through the real `course-grader grade`, on the local pool and on Dask.

While a batch runs, the test kills grading worker processes by pid (SIGKILL), found through a marker
process that a student's code starts in its sandbox:

* "once": its worker is killed the first time only -> the notebook is graded on another worker and
  gets its full points;
* "poison": its worker is killed on every attempt -> after --retries 1 (two attempts) it is a flagged
  0 ("worker"), and the batch goes on;

every other student is graded exactly right, and every grade is in the gradebook exactly once.
"""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from tests.grader_helpers import (CLI, FAST, assert_each_grade_once, batch_course, graded_parts, grading_worker_of,
                                  marker_cell, needs_bwrap, processes_with)

pytestmark = needs_bwrap

FIRST_PART = "output_size"  # the first answer cell of FAST: the marker code goes before it


class Killer(threading.Thread):
    """Kills (SIGKILL) the grading worker of every process carrying ``marker``: once, or every time."""

    def __init__(self, marker, once):
        super().__init__(daemon=True)
        self.marker, self.once, self.killed, self.stop = marker, once, [], threading.Event()

    def run(self):
        while not self.stop.is_set() and not (self.once and self.killed):
            for pid in processes_with(self.marker):
                worker = grading_worker_of(pid)
                if worker and worker not in self.killed:
                    try:
                        os.kill(worker, signal.SIGKILL)
                        self.killed.append(worker)
                    except ProcessLookupError:
                        pass
            time.sleep(0.05)


EXECUTORS = {"local-pool": ["--workers", "2"], "dask-local": ["--dask-local", "2"]}


@pytest.fixture(scope="module", params=sorted(EXECUTORS))
def killed_batch(tmp_path_factory, request):
    tag = f"cg-fault-{os.getpid()}-{request.param}"
    students = {"ann": "correct", "bo": "blank", "cy": "correct",
                "once": {FIRST_PART: marker_cell(f"{tag}-once", 1.0)},
                "poison": {FIRST_PART: marker_cell(f"{tag}-poison", 1.0)}}
    root, expected = batch_course(tmp_path_factory, f"faults-{request.param}", students)
    for gid in [g for s, g in expected if s == "poison"]:
        expected[("poison", gid)] = 0.0
    killers = [Killer(f"{tag}-once", once=True), Killer(f"{tag}-poison", once=False)]
    for k in killers:
        k.start()
    try:
        proc = subprocess.run([CLI, "--course-dir", str(root), "grade", FAST, *EXECUTORS[request.param],
                               "--retries", "1", "--quiet"], capture_output=True, text=True, timeout=900)
    finally:
        for k in killers:
            k.stop.set()
            k.join(10)
    return {"root": root, "expected": expected, "proc": proc, "once": killers[0], "poison": killers[1]}


def test_the_batch_survives_killed_workers(killed_batch):
    proc = killed_batch["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "graded 4 student(s), failed 1" in proc.stdout, proc.stdout
    assert len(killed_batch["once"].killed) == 1
    assert len(killed_batch["poison"].killed) == 2  # --retries 1: two attempts, both killed


def test_every_grade_is_in_the_gradebook_exactly_once(killed_batch):
    assert_each_grade_once(graded_parts(killed_batch["root"]), killed_batch["expected"])


def test_a_submission_that_kills_its_worker_every_time_is_a_flagged_zero(killed_batch):
    results = json.loads((killed_batch["root"] / "grader_results" / FAST / "poison.json").read_text())[FAST]
    assert results["status"] == "failed" and results["score"] == 0.0
    assert [f[0] for f in results["flags"]] == ["worker"]
    assert "worker process died 2 time(s)" in results["flags"][0][1]
    assert all(t["message"].startswith("not graded: the grader's worker process died") for t in results["tests"].values())
    once = json.loads((killed_batch["root"] / "grader_results" / FAST / "once.json").read_text())[FAST]
    assert once["status"] == "graded" and once["flags"] == [] and once["score"] == once["max_score"]
