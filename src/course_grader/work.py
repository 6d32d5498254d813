"""The job function: one :class:`~course_grader.jobs.Job` in, one :class:`~course_grader.jobs.Result` out.

:func:`grade_job` is what every executor runs, unchanged: in a local worker process and on a Dask
worker. It reads nothing but its arguments (the submission's bytes travel in the job, the trusted
tests in the payload), writes nothing, and never raises for a bad submission or a grader bug: every
outcome is a Result. Every Result is built here (:func:`_result`), including the flagged 0 the
executors hand back for a job whose worker died too often (:func:`failed_result`).
"""
import copy
import os
import socket
import time
import traceback

from .jobs import Result
from .notebook import BrokenNotebook, assemble, is_test, nbmeta, parse_submission
from .runner import Grader, graded_test, scrub
from .sandbox import Sandbox, SandboxDied, SandboxError
from .seeds import grading_seed


def worker_name():
    """host:pid of this process (shown in a result's timings)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def grade_job(job, payload, sandboxes=None):
    """Grade ``job`` against its notebook's ``payload``; returns a :class:`Result`.

    ``sandboxes``: an optional :class:`~course_grader.runner.SandboxSource` owned by the calling
    worker (prestarted sandboxes); without it each notebook starts its own.
    """
    t0, started = time.monotonic(), time.time()
    try:
        result = _grade(job, payload, sandboxes, t0)
    except Exception as exc:  # a grader bug must not stop the batch: this notebook gets a flagged 0
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result = failed_result(job, payload, f"internal grader error: {detail}", "crash")
    # wall-clock (epoch) seconds: which notebooks were graded at the same time (executors.regrade_alone)
    result.timings.update(started=round(started, 4), finished=round(time.time(), 4))
    if sandboxes is not None:
        sandboxes.prepare(job.limits)
    return result


def _points(source_nb):
    return {nbmeta(c).get("grade_id"): float(nbmeta(c).get("points") or 0) for c in source_nb["cells"] if is_test(c)}


def _grade(job, payload, sandboxes, t0):
    source, release = payload.source, payload.release
    messages = list(job.notes)
    try:
        if job.submission is None:
            raise BrokenNotebook("no notebook was submitted")
        student_nb, notes = parse_submission(job.submission)
        messages += notes
    except BrokenNotebook as exc:
        return _unreadable(job, payload, messages, str(exc), t0)
    grader = Grader(source, release, job.limits, library=(payload.shingles, payload.normalized_shingles),
                    sandboxes=sandboxes, seed=grading_seed(job.student, job.assignment))
    try:
        entries, tests, flags = grader.grade(student_nb)
    finally:
        if grader.sandbox is not None:
            grader.sandbox.close()
    timings = {"sandbox_start": round(grader.sandbox_start_s, 4), "trusted_decode": round(grader.trusted_seconds, 4)}
    return _result(job, source, entries, "graded", tests, messages, flags, t0, timings)


def _unreadable(job, payload, messages, reason, t0):
    """An unreadable or missing submission: every part 0, the reason in every test cell."""
    entries, _ = assemble(payload.source, payload.release, copy.deepcopy(payload.release))
    max_points = _points(payload.source)
    tests = {}
    msg = f"not graded: {reason}"
    for entry in entries:
        if entry["role"] == "test":
            tests[entry["grade_id"]] = graded_test(max_points[entry["grade_id"]], msg)
            entry["cell"]["outputs"] = [_error_output(msg)]
    return _result(job, payload.source, entries, "failed", tests, messages + [reason], [["broken", reason]], t0, {})


def failed_result(job, payload, message, flag, attempts=1):
    """A flagged 0 for every part of ``job``, with ``message`` in every test cell.

    For a job the grader could not finish: its worker died on every attempt (``flag`` "worker"), or
    a grader bug (``flag`` "crash"). The notebook is the released one, so the gradebook gets a row
    for every graded part.
    """
    entries, _ = assemble(payload.source, payload.release, copy.deepcopy(payload.release))
    max_points = _points(payload.source)
    tests = {}
    for entry in entries:
        if entry["role"] == "test":
            tests[entry["grade_id"]] = graded_test(max_points[entry["grade_id"]], message)
            entry["cell"]["outputs"] = [_error_output(message)]
    result = _result(job, payload.source, entries, "failed", tests, list(job.notes) + [message], [[flag, message]],
                     time.monotonic(), {})
    result.attempts = attempts
    return result


def _error_output(message):
    return {"output_type": "error", "ename": "TestFailed", "evalue": message, "traceback": [message]}


def _result(job, source_nb, entries, status, tests, messages, flags, t0, timings):
    """The one place a Result is built."""
    nb = {"cells": [e["cell"] for e in entries], "metadata": copy.deepcopy(source_nb.get("metadata", {})),
          "nbformat": 4, "nbformat_minor": max(int(source_nb.get("nbformat_minor", 5)), 5)}
    timings = dict(timings, total=round(time.monotonic() - t0, 4), worker=worker_name())
    return Result(key=job.key, student=job.student, notebook=job.notebook, content_hash=job.content_hash,
                  status=status, tests=scrub(tests), messages=scrub(list(messages)),
                  flags=scrub([list(f) for f in flags]), notebook_json=scrub(nb), timings=timings)


def preflight_here(limits):
    """None if the bubblewrap sandbox works in this process (a worker), else the reason, in one line.

    Runs ``import numpy; 1 + 1`` in a sandbox with ``limits``: a worker that cannot sandbox refuses to
    grade instead of zeroing every student (or, worse, grading unsandboxed).
    """
    try:
        with Sandbox(limits) as sb:
            reply = sb.run_cell("import numpy\n1 + 1", timeout=60)
        if not reply.get("ok") or reply.get("result") != "2":
            return f"the sandbox answered {reply!r}"
    except (SandboxError, SandboxDied) as exc:
        return " ".join(str(exc).split())
    return None
