"""`course-grader grade`: workers execute, one writer (this process) writes the gradebook."""
import glob
import json
import multiprocessing
import os
import shutil
import sys
import time
import warnings

from . import integrity
from .course import CourseError
from .runner import discard_spare, enable_prespawn, grade_submission, graded_test
from .sandbox import Limits

_JOB_CONTEXT = {}


def _worker(job):
    student, notebook, path = job
    enable_prespawn(_JOB_CONTEXT.get("prespawn", False))
    source, release = _JOB_CONTEXT["pairs"][notebook]
    try:
        result = grade_submission(source, release, path, _JOB_CONTEXT["limits"])
    except Exception as exc:  # a grader bug must not stop the batch
        result = failed_result(source, release, f"internal grader error: {type(exc).__name__}: {exc}")
    return student, notebook, path, result


def failed_result(source, release, message):
    """A result with 0 for every graded part and a notebook the gradebook writer can save.

    Every test cell gets an error output, so nbgrader's SaveAutoGrades gives it 0 points.
    """
    import copy
    from .notebook import is_test, nbmeta
    nb = copy.deepcopy(release)
    nb["cells"] = [c for c in nb["cells"] if isinstance(c, dict)]
    tests = {}
    for cell in nb["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            if is_test(cell):
                cell["outputs"] = [{"output_type": "error", "ename": "TestFailed", "evalue": message,
                                    "traceback": [message]}]
    for cell in source["cells"]:
        if is_test(cell):
            pts = float(nbmeta(cell).get("points") or 0)
            tests[nbmeta(cell).get("grade_id")] = graded_test(pts, message)
    return {"status": "failed", "messages": [message], "flags": [["crash", message]], "tests": tests,
            "notebook": nb, "score": 0.0, "max_score": sum(t["max"] for t in tests.values()), "seconds": 0.0}


def plan_jobs(course, assignment, students, notebooks):
    """(jobs, messages): which file is graded as which notebook, for every student."""
    jobs, messages = [], {}
    for student in students:
        folder = course.dir("submitted", student, assignment)
        found = sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.ipynb")))
        remaining = [f for f in found if os.path.splitext(f)[0] not in notebooks]
        for nb in notebooks:
            path = os.path.join(folder, nb + ".ipynb")
            if os.path.exists(path):
                jobs.append((student, nb, path))
                continue
            # a wrong file name: take the only unclaimed notebook, or the closest name
            pick = None
            if len(remaining) == 1 and len(notebooks) == 1:
                pick = remaining[0]
            else:
                close = [f for f in remaining if nb.lower() in f.lower().replace(" ", "_").replace("-", "_")]
                pick = close[0] if len(close) == 1 else None
            if pick:
                remaining.remove(pick)
                messages.setdefault(student, []).append(
                    f"the notebook was submitted as {pick!r}, not {nb + '.ipynb'!r}; it was graded as {nb}")
                jobs.append((student, nb, os.path.join(folder, pick)))
            else:
                msg = f"no notebook {nb + '.ipynb'!r} was submitted"
                if found:
                    msg += f" (found: {', '.join(found)})"
                messages.setdefault(student, []).append(msg)
                jobs.append((student, nb, None))
    return jobs, messages


class Progress:
    def __init__(self, total, stream=sys.stderr):
        self.total, self.done, self.start, self.stream = total, 0, time.monotonic(), stream

    def step(self, label=""):
        self.done += 1
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} elapsed {elapsed:5.1f}s ETA {eta:5.1f}s {label[:30]:30}")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def _notes_cell(notes):
    text = "**Grader notes**\n\n" + "\n".join(f"- {n}" for n in notes)
    return {"cell_type": "markdown", "id": "course-grader-notes", "metadata": {}, "source": text}


def write_result(course, gb, assignment, student, notebook, path, result, extra_messages):
    """The single writer: autograded notebook, nbgrader gradebook (SaveAutoGrades), results file."""
    from nbformat import from_dict
    from .database import save_autogrades
    out_dir = course.dir("autograded", student, assignment)
    os.makedirs(out_dir, exist_ok=True)
    messages = list(extra_messages) + result["messages"]
    notes = messages + [f"flag ({kind}): {detail}" for kind, detail in result["flags"]]
    nb = result["notebook"]
    if notes:
        nb["cells"].insert(0, _notes_cell(notes))
    nbnode = from_dict(nb)
    save_autogrades(gb, nbnode, assignment, notebook, student)  # one transaction per notebook
    with open(os.path.join(out_dir, notebook + ".ipynb"), "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1)
    stamp = os.path.join(course.dir("submitted", student, assignment), "timestamp.txt")
    if os.path.exists(stamp):
        shutil.copy(stamp, os.path.join(out_dir, "timestamp.txt"))
    record_path = course.results_path(assignment, student)
    os.makedirs(os.path.dirname(record_path), exist_ok=True)
    record = {}
    if os.path.exists(record_path):
        with open(record_path, encoding="utf-8") as f:
            record = json.load(f)
    record[notebook] = {k: v for k, v in result.items() if k != "notebook"}
    record[notebook]["messages"] = messages
    with open(record_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True)
    os.replace(record_path + ".tmp", record_path)


def preflight(limits):
    """Fail early, with the reason, if the sandbox cannot run here (instead of zeroing every student)."""
    from .sandbox import Sandbox, SandboxDied, SandboxError
    try:
        with Sandbox(limits) as sb:
            reply = sb.run_cell("import numpy\n1 + 1", timeout=60)
        if not reply.get("ok") or reply.get("result") != "2":
            raise SandboxError(f"unexpected reply {reply!r}")
    except (SandboxError, SandboxDied) as exc:
        raise CourseError(f"the bubblewrap sandbox does not work on this machine: {exc}") from None


def grade(course, assignment, students=None, workers=None, limits=None, progress=True, stream=sys.stderr):
    """Grade every (or the named) students' submissions; returns a summary dict."""
    try:  # nbgrader's update_or_create_submission triggers harmless SQLAlchemy autoflush warnings
        from sqlalchemy.exc import SAWarning
        warnings.filterwarnings("ignore", category=SAWarning)
    except ImportError:
        pass
    limits = limits or Limits()
    notebooks = course.notebooks(assignment)
    pairs = {nb: course.load_pair(assignment, nb) for nb in notebooks}
    submitted = course.submitted_students(assignment)
    if students:
        missing = [s for s in students if s not in submitted]
        if missing:
            raise CourseError(f"no submission of {assignment} for: {', '.join(missing)} "
                              f"(expected {course.dir('submitted', missing[0], assignment)})")
    else:
        students = submitted
    if not students:
        raise CourseError(f"no submissions of {assignment} in {course.dir('submitted')}: run course-grader collect")
    with course.gradebook() as gb:
        try:
            gb.find_assignment(assignment)
        except Exception:
            raise CourseError(f"assignment {assignment!r} is not in the gradebook: "
                              f"run `course-grader release {assignment}` first") from None
    preflight(limits)
    # cnnmath's shingles (integrity) walked once here, not once per forked worker
    integrity.library_shingles()
    integrity.library_normalized_shingles()
    jobs, messages = plan_jobs(course, assignment, students, notebooks)
    workers = max(1, int(workers or os.cpu_count() or 1))
    _JOB_CONTEXT.update(pairs=pairs, limits=limits, prespawn=len(jobs) > 1)
    bar = Progress(len(jobs), stream) if progress else None
    summary = {"graded": 0, "failed": 0, "flagged": 0, "students": len(students), "notebooks": len(jobs)}
    flagged_students, failed_students = set(), set()
    t0 = time.monotonic()

    def handle(gb, item):
        student, notebook, path, result = item
        gb.update_or_create_student(student)
        stamp = course.timestamp_of(course.dir("submitted", student, assignment))
        if stamp:
            gb.update_or_create_submission(assignment, student, timestamp=stamp)
        else:
            gb.update_or_create_submission(assignment, student)
        write_result(course, gb, assignment, student, notebook, path, result,
                     messages.get(student, []) if notebook == notebooks[0] else [])
        if result["status"] != "graded":
            failed_students.add(student)
        if result["flags"]:
            flagged_students.add(student)
        if bar:
            bar.step(f"{student}")

    # start the workers before the gradebook connection exists (they are forked)
    leftover = list(jobs)
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool
        ctx = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx)
        try:
            futures = {pool.submit(_worker, job): job for job in jobs}
            with course.gradebook() as gb:
                for fut in as_completed(futures):
                    try:
                        item = fut.result()
                    except BrokenProcessPool:
                        break  # a worker was killed (e.g. by the OOM killer): finish the rest serially
                    handle(gb, item)
                    leftover.remove(futures[fut])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if leftover:
            stream.write(f"\nwarning: a worker process died; grading the {len(leftover)} remaining "
                         "notebook(s) serially\n")
    if leftover:  # serial grading (workers == 1), or what a dead pool left
        try:
            with course.gradebook() as gb:
                for job in leftover:
                    handle(gb, _worker(job))
        finally:
            discard_spare()
    summary["failed"] = len(failed_students)
    summary["graded"] = len(students) - len(failed_students)
    summary["flagged"] = len(flagged_students)
    summary["seconds"] = round(time.monotonic() - t0, 2)
    summary["flagged_students"] = sorted(flagged_students)
    summary["failed_students"] = sorted(failed_students)
    return summary
