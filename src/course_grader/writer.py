"""The one writer of a batch: results go into the gradebook and the per-student files, each exactly once.

Only the grading client writes; workers return :class:`~course_grader.jobs.Result` records. For every
result, in this order:

1. the gradebook (nbgrader's tables, through :func:`course_grader.database.save_autogrades`): one
   transaction per notebook, so a reader never sees a notebook half-graded and an interrupted write
   leaves nothing behind;
2. ``autograded/<student>/<assignment>/<notebook>.ipynb`` (with a "Grader notes" cell) and nbgrader's
   ``timestamp.txt``;
3. ``grader_results/<assignment>/<student>.json``, replaced atomically, last: its content hash marks the
   notebook done (plan.py skips it on a rerun). A crash between 1 and 3 regrades that notebook on the
   rerun, which overwrites the same gradebook rows: grades are set, never added, so nothing is counted twice.

Student and submission rows are created once per student per batch, not once per notebook.
"""
import json
import os
import shutil
import time
import warnings


class WriterError(Exception):
    """The same grade offered twice in one batch (an executor bug: never written twice)."""


def _notes_cell(notes):
    text = "**Grader notes**\n\n" + "\n".join(f"- {n}" for n in notes)
    return {"cell_type": "markdown", "id": "course-grader-notes", "metadata": {}, "source": text}


class GradebookWriter:
    """``with GradebookWriter(course, assignment) as w: w.write(result)``."""

    def __init__(self, course, assignment):
        self.course = course
        self.assignment = assignment
        self.gb = None
        self.written = set()        # job keys written in this batch
        self.students = set()       # students whose student/submission rows exist
        self.seconds = {"gradebook": 0.0, "files": 0.0}

    def __enter__(self):
        try:  # nbgrader's update_or_create_submission triggers harmless SQLAlchemy autoflush warnings
            from sqlalchemy.exc import SAWarning
            warnings.filterwarnings("ignore", category=SAWarning)
        except ImportError:
            pass
        self.gb = self.course.gradebook().__enter__()
        return self

    def __exit__(self, *exc):
        gb, self.gb = self.gb, None
        if gb is not None:
            gb.__exit__(*exc)

    def _ensure_submission(self, student):
        if student in self.students:
            return
        gb, a = self.gb, self.assignment
        gb.update_or_create_student(student)
        stamp = self.course.timestamp_of(self.course.dir("submitted", student, a))
        if stamp:
            gb.update_or_create_submission(a, student, timestamp=stamp)
        else:
            gb.update_or_create_submission(a, student)
        self.students.add(student)

    def write(self, result):
        """Write one result (raises :class:`WriterError` if its job was already written in this batch)."""
        from nbformat import from_dict
        from .database import save_autogrades
        if result.key in self.written:
            raise WriterError(f"the grade of {result.key} was offered twice")
        t0 = time.monotonic()
        course, a, student, notebook = self.course, self.assignment, result.student, result.notebook
        self._ensure_submission(student)
        nb = result.notebook_json
        notes = list(result.messages) + [f"flag ({kind}): {detail}" for kind, detail in result.flags]
        if notes:
            nb = dict(nb, cells=[_notes_cell(notes)] + list(nb["cells"]))
        save_autogrades(self.gb, from_dict(nb), a, notebook, student)  # one transaction per notebook
        t1 = time.monotonic()
        out_dir = course.dir("autograded", student, a)
        os.makedirs(out_dir, exist_ok=True)
        _atomic_json(os.path.join(out_dir, notebook + ".ipynb"), nb, indent=1)
        stamp = os.path.join(course.dir("submitted", student, a), "timestamp.txt")
        if os.path.exists(stamp):
            shutil.copy(stamp, os.path.join(out_dir, "timestamp.txt"))
        path = course.results_path(a, student)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        record = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        record[notebook] = result.record()
        _atomic_json(path, record, indent=1, sort_keys=True)
        self.written.add(result.key)
        self.seconds["gradebook"] += t1 - t0
        self.seconds["files"] += time.monotonic() - t1


def _atomic_json(path, value, **kw):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, **kw)
    os.replace(tmp, path)
