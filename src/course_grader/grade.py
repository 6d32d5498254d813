"""`course-grader grade`: plan -> jobs -> executor -> results -> one writer.

    plan.make_batch      which students and notebooks; content hashes; what is already graded
    jobs.Job/Result      the plain records that travel (jobs.py)
    executors            a local pool (--workers N) or Dask (--dask-scheduler / --dask-local)
    work.grade_job       what a worker runs for each job (sandbox + trusted tests)
    writer               the only writer: gradebook + per-student files, each grade exactly once

:func:`grade` ties them together in this process. SIGINT and SIGTERM stop the batch between two writes
(never inside one): what was written stays, and the same command run again grades only the rest.
"""
import signal
import sys
import time

from .course import CourseError
from .executors import DEFAULT_RETRIES, make_executor, run_fairly
from .plan import make_batch
from .sandbox import Limits
from .writer import GradebookWriter


class GradingInterrupted(Exception):
    """The batch was stopped by a signal; ``written`` notebooks of ``total`` are in the gradebook."""

    def __init__(self, signum, written, total):
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name} after writing {written} of {total} notebook(s); "
                         "run the same command again to grade the rest")
        self.signum, self.written, self.total = signum, written, total


class _StopSignals:
    """SIGINT/SIGTERM handlers for one batch: raise between writes, wait until a write is done."""

    def __init__(self):
        self.writing = False
        self.pending = None
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.writing:
            self.pending = signum
        else:
            raise _Stop(signum)

    def write(self, writer, result):
        self.writing = True
        try:
            writer.write(result)
        finally:
            self.writing = False
        if self.pending is not None:
            raise _Stop(self.pending)


class _Stop(BaseException):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _progress(total, stream, enabled):
    from tqdm import tqdm
    return tqdm(total=total, file=stream, disable=not enabled, unit="nb", dynamic_ncols=True, mininterval=0.2,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} notebooks, elapsed {elapsed} ETA {remaining}{postfix}")


def _students(course, assignment, students):
    submitted = course.submitted_students(assignment)
    if students:
        missing = [s for s in students if s not in submitted]
        if missing:
            raise CourseError(f"no submission of {assignment} for: {', '.join(missing)} "
                              f"(expected {course.dir('submitted', missing[0], assignment)})")
        return list(dict.fromkeys(students))
    if not submitted:
        raise CourseError(f"no submissions of {assignment} in {course.dir('submitted')}: run course-grader collect")
    return submitted


def grade(course, assignment, students=None, workers=None, limits=None, progress=True, stream=sys.stderr,
          force=False, dask_scheduler=None, dask_local=None, retries=DEFAULT_RETRIES):
    """Grade the named (default: every) student's submissions of ``assignment``; returns a summary dict.

    Notebooks already graded with the same content hash are skipped unless ``force``. Raises
    :class:`GradingInterrupted` on SIGINT/SIGTERM (what was written is kept).
    """
    t0 = time.monotonic()
    limits = limits or Limits()
    students = _students(course, assignment, students)
    with course.gradebook() as gb:
        try:
            gb.find_assignment(assignment)
        except Exception:
            raise CourseError(f"assignment {assignment!r} is not in the gradebook: "
                              f"run `course-grader release {assignment}` first") from None
    batch = make_batch(course, assignment, students, limits, force=force)
    executor = make_executor(workers, dask_scheduler, dask_local, retries)
    records = dict(batch.done)
    written = 0
    with _StopSignals() as stop:
        try:
            if batch.jobs:
                with executor:
                    executor.preflight(limits, jobs=len(batch.jobs))
                    bar = _progress(len(batch.jobs), stream, progress)
                    try:
                        with GradebookWriter(course, assignment) as writer:
                            for result in run_fairly(executor, batch.jobs, batch.payloads):
                                stop.write(writer, result)
                                written += 1
                                records[result.key] = result.record()
                                bar.update(1)
                                bar.set_postfix_str(result.student[:20], refresh=False)
                            write_seconds = dict(writer.seconds)
                    finally:
                        bar.close()
            else:
                write_seconds = {}
        except _Stop as stopped:
            raise GradingInterrupted(stopped.signum, written, len(batch.jobs)) from None
    return _summary(batch, records, written, executor, write_seconds, time.monotonic() - t0)


def _summary(batch, records, written, executor, write_seconds, seconds):
    failed, flagged = set(), set()
    for key, record in records.items():
        student = key.split("/")[1]  # Job.key: assignment/student/notebook
        if record.get("status") != "graded":
            failed.add(student)
        if record.get("flags"):
            flagged.add(student)
    return {"graded": len(batch.students) - len(failed), "failed": len(failed), "flagged": len(flagged),
            "students": len(batch.students), "notebooks": len(records), "written": written,
            "skipped": len(batch.done), "executor": executor.description, "seconds": round(seconds, 2),
            "write_seconds": {k: round(v, 3) for k, v in write_seconds.items()},
            "flagged_students": sorted(flagged), "failed_students": sorted(failed)}
