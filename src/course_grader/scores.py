"""Read-only queries of nbgrader's gradebook tables: plain records of assignments, students and scores.

``course-grader export`` must start fast, and importing nbgrader takes seconds (its package imports
its Jupyter server extensions); this module reads nbgrader's schema (``nbgrader/api.py``) with
SQLAlchemy Core alone, and computes every score the way nbgrader's column properties do:

- a grade's score is ``manual_score`` if set, else ``auto_score`` if set, else 0, plus
  ``extra_credit`` when set (``Grade.score``);
- a graded cell is a grade cell or a task cell, its points are its ``max_score``
  (``Grade.max_score``), and an assignment's maximum is the sum over its notebooks' graded cells
  (``Assignment.max_score``);
- a submission's score is the sum of its grades' scores (``SubmittedAssignment.score``).
"""
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, Column, DateTime, Float, MetaData, String, Table, create_engine, inspect, select

_META = MetaData()
_ASSIGNMENT = Table("assignment", _META, Column("id", String), Column("name", String), Column("duedate", DateTime))
_NOTEBOOK = Table("notebook", _META, Column("id", String), Column("name", String), Column("assignment_id", String))
_BASE_CELL = Table("base_cell", _META, Column("id", String), Column("name", String), Column("notebook_id", String))
_GRADE_CELL = Table("grade_cells", _META, Column("id", String), Column("max_score", Float),
                    Column("cell_type", String))
_TASK_CELL = Table("task_cells", _META, Column("id", String), Column("max_score", Float),
                   Column("cell_type", String))
_STUDENT = Table("student", _META, Column("id", String), Column("first_name", String),
                 Column("last_name", String), Column("email", String), Column("lms_user_id", String))
_SUBMISSION = Table("submitted_assignment", _META, Column("id", String), Column("assignment_id", String),
                    Column("student_id", String), Column("timestamp", DateTime))
_SUBMITTED_NOTEBOOK = Table("submitted_notebook", _META, Column("id", String), Column("assignment_id", String),
                            Column("notebook_id", String), Column("flagged", Boolean))
_GRADE = Table("grade", _META, Column("id", String), Column("notebook_id", String), Column("cell_id", String),
               Column("auto_score", Float), Column("manual_score", Float), Column("extra_credit", Float))


@dataclass(frozen=True)
class Part:
    """A graded cell of an assignment: ``notebook``/``name`` (its grade_id), points, code or markdown."""
    notebook: str
    name: str
    max_score: float
    cell_type: str


@dataclass(frozen=True)
class Student:
    """A student of the gradebook (names, e-mail and LMS id may be empty)."""
    id: str
    first_name: Optional[str] = None
    last_name: Optional[str] = None
    email: Optional[str] = None
    lms_user_id: Optional[str] = None


@dataclass
class Submission:
    """One student's graded submission: total score, timestamp, and part -> score."""
    student_id: str
    score: float
    timestamp: Optional[datetime]
    parts: dict = field(default_factory=dict)


@dataclass
class Assignment:
    """An assignment: name, due date, graded parts, maximum, and student id -> :class:`Submission`."""
    name: str
    duedate: Optional[datetime]
    parts: list
    max_score: float
    submissions: dict = field(default_factory=dict)


@dataclass
class Scores:
    """Everything ``export`` writes: assignments by due date then name, students by id."""
    assignments: list
    students: list


def grade_score(auto_score, manual_score, extra_credit):
    """nbgrader's ``Grade.score``: the manual score wins over the automatic one; extra credit is added."""
    base = manual_score if manual_score is not None else auto_score
    if base is None:
        return 0.0
    return float(base) + float(extra_credit or 0.0)


def read_scores(db_url):
    """Read the whole gradebook at ``db_url`` into a :class:`Scores` (one connection, one snapshot).

    A database without nbgrader's tables (nothing released into it yet) holds no scores.

    Raises
    ------
    sqlalchemy.exc.SQLAlchemyError
        If the database cannot be read (the command turns it into a one-line error).
    """
    engine = create_engine(db_url)
    try:
        with engine.connect() as con, con.begin():
            if not inspect(con).has_table("assignment"):
                return Scores([], [])
            assignments = con.execute(select(_ASSIGNMENT)).all()
            cells = con.execute(
                select(_BASE_CELL.c.id, _BASE_CELL.c.name, _NOTEBOOK.c.name.label("notebook"),
                       _NOTEBOOK.c.assignment_id, _GRADE_CELL.c.max_score.label("g_max"),
                       _GRADE_CELL.c.cell_type.label("g_type"), _TASK_CELL.c.max_score.label("t_max"),
                       _TASK_CELL.c.cell_type.label("t_type"))
                .join(_NOTEBOOK, _BASE_CELL.c.notebook_id == _NOTEBOOK.c.id)
                .outerjoin(_GRADE_CELL, _GRADE_CELL.c.id == _BASE_CELL.c.id)
                .outerjoin(_TASK_CELL, _TASK_CELL.c.id == _BASE_CELL.c.id)).all()
            students = con.execute(select(_STUDENT)).all()
            submissions = con.execute(select(_SUBMISSION)).all()
            grades = con.execute(
                select(_SUBMITTED_NOTEBOOK.c.assignment_id.label("submission_id"), _GRADE.c.cell_id,
                       _GRADE.c.auto_score, _GRADE.c.manual_score, _GRADE.c.extra_credit)
                .join(_SUBMITTED_NOTEBOOK, _GRADE.c.notebook_id == _SUBMITTED_NOTEBOOK.c.id)).all()
    finally:
        engine.dispose()
    parts_by_cell, parts_of = {}, {a.id: [] for a in assignments}
    for c in cells:
        if c.g_type is None and c.t_type is None:
            continue  # a solution or source cell: not graded
        part = Part(c.notebook, c.name, float(c.g_max if c.g_type is not None else c.t_max or 0.0),
                    c.g_type if c.g_type is not None else c.t_type)
        parts_by_cell[c.id] = part
        parts_of.setdefault(c.assignment_id, []).append(part)
    by_id = {}
    for a in assignments:
        parts = sorted(parts_of.get(a.id, []), key=lambda p: (p.notebook, p.name))
        by_id[a.id] = Assignment(a.name, a.duedate, parts, sum(p.max_score for p in parts))
    subs = {}
    for s in submissions:
        sub = Submission(s.student_id, 0.0, s.timestamp)
        subs[s.id] = sub
        by_id[s.assignment_id].submissions[s.student_id] = sub
    for g in grades:
        sub, part = subs.get(g.submission_id), parts_by_cell.get(g.cell_id)
        if sub is None or part is None:
            continue
        score = grade_score(g.auto_score, g.manual_score, g.extra_credit)
        sub.parts[(part.notebook, part.name)] = score
        sub.score += score
    ordered = sorted(by_id.values(), key=lambda a: (a.duedate is None, a.duedate or datetime.min, a.name))
    people = sorted((Student(s.id, s.first_name, s.last_name, s.email, s.lms_user_id) for s in students),
                    key=lambda s: s.id)
    return Scores(ordered, people)
