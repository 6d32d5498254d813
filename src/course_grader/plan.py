"""Planning a batch: which students and notebooks, their content hashes, and what is already graded.

:func:`make_batch` reads the course once, on the grading client, and returns a :class:`Batch` of plain
records: one :class:`~course_grader.jobs.TestPayload` per notebook and one :class:`~course_grader.jobs.Job`
per (student, notebook) still to grade. A job's content hash covers the submitted bytes, the trusted
payload and the limits; a notebook whose hash matches what the writer recorded (and whose grades are
in the gradebook) is skipped, so rerunning an interrupted command grades only what is missing or
changed. ``force`` plans every notebook again.
"""
import dataclasses
import glob
import json
import os
from dataclasses import dataclass

from . import integrity
from .course import CourseError
from .jobs import Job, TestPayload, digest
from .notebook import MAX_BYTES


@dataclass
class Batch:
    """What one `grade` command does: ``jobs`` to run; ``done`` (key -> results-file record) to keep."""

    assignment: str
    students: list
    notebooks: list
    payloads: dict        # payload_id -> TestPayload
    jobs: list            # Job, in grading order
    done: dict            # job key -> the record already written for an unchanged notebook


def make_payloads(course, assignment, notebooks):
    """notebook name -> TestPayload (the trusted inputs, read from the course once)."""
    shingles, normalized = integrity.library_shingles(), integrity.library_normalized_shingles()
    library_id = digest(sorted(map(list, shingles)), sorted(map(list, normalized)))
    payloads = {}
    for nb in notebooks:
        source, release = course.load_pair(assignment, nb)
        payloads[nb] = TestPayload(assignment=assignment, notebook=nb, source=source, release=release,
                                   shingles=shingles, normalized_shingles=normalized,
                                   payload_id=digest(assignment, nb, source, release, library_id))
    return payloads


def find_submissions(course, assignment, student, notebooks):
    """[(notebook, path or None, notes)]: which file is graded as which notebook, for one student.

    A notebook submitted under a wrong name is taken if it is the only unclaimed one, or the only
    one whose name contains the expected name; the note says so.
    """
    folder = course.dir("submitted", student, assignment)
    found = sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.ipynb")))
    remaining = [f for f in found if os.path.splitext(f)[0] not in notebooks]
    out = []
    for nb in notebooks:
        path = os.path.join(folder, nb + ".ipynb")
        if os.path.exists(path):
            out.append((nb, path, ()))
            continue
        pick = None
        if len(remaining) == 1 and len(notebooks) == 1:
            pick = remaining[0]
        else:
            close = [f for f in remaining if nb.lower() in f.lower().replace(" ", "_").replace("-", "_")]
            pick = close[0] if len(close) == 1 else None
        if pick:
            remaining.remove(pick)
            note = f"the notebook was submitted as {pick!r}, not {nb + '.ipynb'!r}; it was graded as {nb}"
            out.append((nb, os.path.join(folder, pick), (note,)))
        else:
            msg = f"no notebook {nb + '.ipynb'!r} was submitted"
            if found:
                msg += f" (found: {', '.join(found)})"
            out.append((nb, None, (msg,)))
    return out


def _read(path):
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read(MAX_BYTES)
    except OSError as exc:
        raise CourseError(f"cannot read the submission {path}: {exc.strerror}") from None


def read_records(course, assignment, student):
    """The writer's results file of one student (notebook -> record), or {}."""
    path = course.results_path(assignment, student)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}  # a torn or foreign file: regrade
    return record if isinstance(record, dict) else {}


def graded_in_gradebook(course, assignment):
    """{(student, notebook)} with autograded scores in the gradebook (a new database regrades all)."""
    from nbgrader.api import MissingEntry
    have = set()
    with course.gradebook() as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            return have
        for sub in a.submissions:
            for nb in sub.notebooks:
                if any(g.auto_score is not None for g in nb.grades):
                    have.add((sub.student.id, nb.name))
    return have


def make_batch(course, assignment, students, limits, force=False):
    """Plan the grading of ``students``' submissions of ``assignment``; see :class:`Batch`."""
    notebooks = course.notebooks(assignment)
    payloads = make_payloads(course, assignment, notebooks)
    limits_json = dataclasses.asdict(limits)
    in_gradebook = set() if force else graded_in_gradebook(course, assignment)
    jobs, done = [], {}
    for student in students:
        records = {} if force else read_records(course, assignment, student)
        for nb, path, notes in find_submissions(course, assignment, student, notebooks):
            data = _read(path)
            payload = payloads[nb]
            content_hash = digest(b"" if data is None else data, data is None, payload.payload_id, limits_json,
                                  list(notes))
            job = Job(assignment=assignment, student=student, notebook=nb, submission=data,
                      submitted_as=os.path.basename(path) if path else None, payload_id=payload.payload_id,
                      limits=limits, content_hash=content_hash, notes=notes)
            old = records.get(nb)
            autograded = os.path.join(course.dir("autograded", student, assignment), nb + ".ipynb")
            if (isinstance(old, dict) and old.get("content_hash") == content_hash
                    and (student, nb) in in_gradebook and os.path.exists(autograded)):
                done[job.key] = old
            else:
                jobs.append(job)
    return Batch(assignment=assignment, students=list(students), notebooks=notebooks,
                 payloads={p.payload_id: p for p in payloads.values()}, jobs=jobs, done=done)
