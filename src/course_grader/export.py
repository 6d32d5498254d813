"""`course-grader export`: grades as CSV, from nbgrader's gradebook (read by :mod:`course_grader.scores`).

Always written: ``students.csv`` (one row per student, one column per assignment, total),
``assignments.csv`` (one row per student and assignment) and, with ``per_part``, ``parts.csv``.
``formats`` adds the gradebook-import files of learning-management systems:

- ``canvas.csv``: Canvas' *Gradebook import* CSV (the layout of Canvas' own gradebook export):
  columns ``Student`` ("Last, First"), ``ID`` (the Canvas user id: nbgrader's ``lms_user_id``),
  ``SIS User ID`` (the nbgrader student id), ``SIS Login ID``, ``Section``, then one column per
  assignment, then a ``Points Possible`` row first. A column is named ``Name (id)`` when the Canvas
  assignment id is known (``canvas_ids``); a bare ``Name`` makes Canvas create the assignment.
- ``moodle.csv``: Moodle's *Import grades from CSV*: identifier columns ``Username`` (the nbgrader
  student id), ``ID number`` (``lms_user_id``) and ``Email address`` (the ones the import can
  "map from"), ``First name``, ``Last name``, then one grade column per assignment, named as the
  Moodle grade item to map to.
"""
import csv
import os

from .course import CourseError
from .scores import read_scores

FORMATS = ("canvas", "moodle")
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTITY = ["Username", "ID number", "Email address", "First name", "Last name"]


def _fmt(x):
    return "" if x is None else f"{float(x):g}"


def _write_csv(path, header, rows):
    """Write one header row then ``rows`` to ``path``; return ``path``."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _native(scores, out_dir, per_part):
    names = [a.name for a in scores.assignments]
    ids = [s.id for s in scores.students]
    rows_a, rows_p = [], []
    for a in scores.assignments:
        for sid in ids:
            sub = a.submissions.get(sid)
            if sub is None:
                rows_a.append([sid, a.name, "", _fmt(a.max_score), "missing", ""])
                continue
            rows_a.append([sid, a.name, _fmt(sub.score), _fmt(a.max_score), "submitted",
                           sub.timestamp.isoformat() if sub.timestamp else ""])
            if per_part:
                for p in a.parts:
                    if p.cell_type == "code" and (p.notebook, p.name) in sub.parts:
                        rows_p.append([sid, a.name, p.notebook, p.name, _fmt(sub.parts[(p.notebook, p.name)]),
                                       _fmt(p.max_score)])
    max_total = sum(a.max_score for a in scores.assignments)
    rows_s = []
    for sid in ids:
        got = [a.submissions[sid].score if sid in a.submissions else None for a in scores.assignments]
        rows_s.append([sid, *(_fmt(s) if s is not None else "0" for s in got), _fmt(sum(s or 0 for s in got)),
                       _fmt(max_total)])
    paths = [_write_csv(os.path.join(out_dir, "assignments.csv"),
                        ["student_id", "assignment", "score", "max_score", "status", "timestamp"], rows_a),
             _write_csv(os.path.join(out_dir, "students.csv"), ["student_id", *names, "total", "max_total"], rows_s)]
    if per_part:
        paths.append(_write_csv(os.path.join(out_dir, "parts.csv"),
                                ["student_id", "assignment", "notebook", "grade_id", "score", "max_score"], rows_p))
    return paths


def _score_or_blank(a, sid):
    return _fmt(a.submissions[sid].score) if sid in a.submissions else ""


def canvas_rows(scores, canvas_ids=None):
    """Header and rows of Canvas' gradebook-import CSV (``canvas_ids``: assignment name -> Canvas id)."""
    canvas_ids = canvas_ids or {}
    header = CANVAS_IDENTITY + [f"{a.name} ({canvas_ids[a.name]})" if a.name in canvas_ids else a.name
                                for a in scores.assignments]
    rows = [["Points Possible", "", "", "", ""] + [_fmt(a.max_score) for a in scores.assignments]]
    for s in scores.students:
        name = ", ".join(p for p in (s.last_name, s.first_name) if p) or s.id
        rows.append([name, s.lms_user_id or "", s.id, s.id, ""] + [_score_or_blank(a, s.id) for a in scores.assignments])
    return header, rows


def moodle_rows(scores):
    """Header and rows of Moodle's grade-import CSV."""
    header = MOODLE_IDENTITY + [a.name for a in scores.assignments]
    rows = [[s.id, s.lms_user_id or "", s.email or "", s.first_name or "", s.last_name or ""]
            + [_score_or_blank(a, s.id) for a in scores.assignments] for s in scores.students]
    return header, rows


def parse_canvas_ids(pairs):
    """``["conv2d=1234", ...]`` -> ``{"conv2d": "1234"}``; a malformed pair is a one-line error."""
    out = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise CourseError(f"--canvas-id must be ASSIGNMENT=NUMBER, got {pair!r}")
        out[name] = value.strip()
    return out


def export(course, out_dir=None, per_part=False, formats=(), canvas_ids=None):
    """Write the CSV files described in the module docstring; return their paths."""
    for f in formats:
        if f not in FORMATS:
            raise CourseError(f"--format must be one of {', '.join(FORMATS)}, got {f!r}")
    out_dir = out_dir or os.path.join(course.root, "export")
    course.check_database()
    scores = read_scores(course.db_url)
    unknown = sorted(set(canvas_ids or {}) - {a.name for a in scores.assignments})
    if unknown:
        raise CourseError(f"--canvas-id names an assignment that is not in the gradebook: {', '.join(unknown)}")
    os.makedirs(out_dir, exist_ok=True)
    paths = _native(scores, out_dir, per_part)
    if "canvas" in formats:
        paths.append(_write_csv(os.path.join(out_dir, "canvas.csv"), *canvas_rows(scores, canvas_ids)))
    if "moodle" in formats:
        paths.append(_write_csv(os.path.join(out_dir, "moodle.csv"), *moodle_rows(scores)))
    return paths
