"""Grading on Dask distributed, through the real `course-grader grade`.

* the same corpus graded on the local pool and on a Dask LocalCluster (--dask-local 2) gives the same
  grades in the gradebook and the same per-part results, messages and flags;
* --dask-scheduler with real `dask scheduler` and `dask worker` processes grades the same;
* a worker that cannot run bubblewrap (its PATH has no bwrap) stops the command with one clear line,
  before anything is graded: locally and on a Dask worker.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.grader_helpers import (CLI, FAST, assert_each_grade_once, batch_course, graded_parts, needs_bwrap, run)
from tests.postgres_server import free_port

pytestmark = needs_bwrap
BIN = Path(sys.executable).parent


def records(root):
    """student -> the results-file record of FAST without timings and attempts."""
    out = {}
    for p in (root / "grader_results" / FAST).glob("*.json"):
        rec = json.loads(p.read_text())[FAST]
        out[p.stem] = {k: v for k, v in rec.items() if k not in ("timings", "attempts", "seconds")}
    return out


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    students = {"ann": "correct", "bo": "blank", "cy": "correct", "di": "blank", "ed": "correct"}
    root, expected = batch_course(tmp_path_factory, "dask", students)
    (root / "submitted" / "di" / FAST / f"{FAST}.ipynb").write_text('{"cells": [')  # broken JSON
    return root, expected


def test_local_pool_and_dask_local_cluster_grade_identically(course):
    root, expected = course
    run(root, "grade", FAST, "--workers", "2", "--quiet")
    local_rows, local = graded_parts(root), records(root)
    assert_each_grade_once(local_rows, expected)
    proc = run(root, "grade", FAST, "--dask-local", "2", "--force", "--quiet")
    assert "5 notebook(s) graded now on the Dask LocalCluster of 2 worker process(es)" in proc.stdout
    assert graded_parts(root) == local_rows
    assert records(root) == local
    assert "not valid JSON" in local["di"]["messages"][0]


def test_dask_scheduler_and_workers_then_a_worker_without_bubblewrap(course, tmp_path):
    root, expected = course
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "2",
                                       "--no-dashboard"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        proc = run(root, "grade", FAST, "--dask-scheduler", address, "--force", "--quiet")
        assert f"5 notebook(s) graded now on the Dask scheduler {address}" in proc.stdout
        assert_each_grade_once(graded_parts(root), expected)
        # a worker whose PATH has no bubblewrap joins the cluster
        env = dict(os.environ, PATH=str(BIN))
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--name", "no-bwrap",
                                       "--no-dashboard"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        from distributed import Client
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(3, timeout=120)
        before = {p: p.stat().st_mtime_ns for p in (root / "autograded").rglob("*.ipynb")}
        bad = run(root, "grade", FAST, "--dask-scheduler", address, "--force", "--quiet", ok=False)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1, bad.stderr
        assert lines[0].startswith("course-grader: error: the bubblewrap sandbox does not work on Dask worker tcp://")
        assert "bubblewrap (bwrap) is not installed" in lines[0]
        assert {p: p.stat().st_mtime_ns for p in (root / "autograded").rglob("*.ipynb")} == before
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_local_worker_without_bubblewrap_is_one_clear_error(course):
    root, _ = course
    env = dict(os.environ, PATH=str(BIN))
    proc = subprocess.run([CLI, "--course-dir", str(root), "grade", FAST, "--force", "--workers", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("course-grader: error: the bubblewrap sandbox does not work on local worker ")
    assert "bubblewrap (bwrap) is not installed" in lines[0] and "no notebook is graded without" in lines[0]
