"""The gradebook database: URL checks, password masking, concurrency settings, one-line errors.

nbgrader opens the gradebook from its URL string in many places (its own apps, ``SaveAutoGrades``), so
every setting the grader needs travels *in the URL*:

- SQLite (``sqlite:///path/gradebook.db``): ``?timeout=60``, a busy timeout, so a second writer
  (two ``grade`` commands, or ``export`` while ``grade`` writes) waits for the lock instead of failing,
  and the file is switched to write-ahead logging (WAL) once, so readers never block the writer.
- PostgreSQL (``postgresql+psycopg://user:password@host:port/dbname``, psycopg 3): ``?connect_timeout=10``,
  so an unreachable host fails in seconds instead of hanging.

nbgrader itself is imported only where it is used (it takes seconds to import): the shared
Gradebook lives in :mod:`course_grader.gradebook`.

Every problem (malformed URL, missing driver, unreachable server, bad credentials) is a
:class:`DatabaseError`: one line naming the URL with its password masked.
"""
import importlib
import logging
import os
import sqlite3

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .course import CourseError

SQLITE_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
# SQLAlchemy dialect+driver -> the Python module that must be importable, and how to get it
DRIVERS = {"sqlite": ("sqlite3", "part of Python"), "sqlite+pysqlite": ("sqlite3", "part of Python"),
           "postgresql+psycopg": ("psycopg", "pip install 'psycopg[binary]'"),
           "postgresql+psycopg2": ("psycopg2", "pip install psycopg2-binary"),
           "postgresql": ("psycopg2", "pip install psycopg2-binary, or use postgresql+psycopg://")}


class DatabaseError(CourseError):
    """The gradebook database cannot be used (the message is one line, without the password)."""


def mask(url):
    """``url`` as a string with its password replaced by ``***`` (unparsable URLs are masked after ``:``)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        text = str(url)
        head, sep, rest = text.partition("://")
        if sep and "@" in rest:
            cred, _, host = rest.rpartition("@")
            if ":" in cred:
                return f"{head}://{cred.split(':', 1)[0]}:***@{host}"
        return text


def _scrub(message, url):
    """``message`` on one line, with the URL's password (if any) masked."""
    text = " ".join(str(message).split())
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def prepare_url(url):
    """The URL the grader uses: checked (dialect, driver importable) and with its concurrency settings.

    Raises :class:`DatabaseError` for a malformed URL or a missing driver.
    """
    try:
        u = make_url(url)
    except Exception:
        raise DatabaseError(f"--db-url is not a database URL, got {mask(url)!r} "
                            "(expected e.g. sqlite:///gradebook.db or "
                            "postgresql+psycopg://user:password@host:5432/dbname)") from None
    name = u.drivername
    if name not in DRIVERS:
        raise DatabaseError(f"--db-url: unsupported database {name!r} in {mask(url)!r} "
                            f"(supported: {', '.join(sorted(DRIVERS))})")
    module, how = DRIVERS[name]
    try:
        importlib.import_module(module)
    except ImportError:
        raise DatabaseError(f"--db-url {mask(url)!r} needs the Python module {module!r}, which is not "
                            f"installed ({how})") from None
    query = dict(u.query)
    if name.startswith("sqlite"):
        if not u.database or u.database == ":memory:":
            raise DatabaseError(f"--db-url {mask(url)!r}: the gradebook must be a file, e.g. sqlite:///gradebook.db")
        query.setdefault("timeout", str(SQLITE_TIMEOUT_S))
    else:
        if not u.database:
            raise DatabaseError(f"--db-url {mask(url)!r} must name a database, "
                                "e.g. postgresql+psycopg://user:password@host:5432/dbname")
        query.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    return u.set(query=query).render_as_string(hide_password=False)


def check_connection(url):
    """Connect once (and switch a SQLite file to WAL); raise :class:`DatabaseError` with the reason."""
    u = make_url(url)
    if u.drivername.startswith("sqlite"):
        folder = os.path.dirname(os.path.abspath(u.database))
        if not os.path.isdir(folder):
            raise DatabaseError(f"--db-url {mask(url)!r}: the folder {folder} does not exist")
        try:
            with sqlite3.connect(u.database, timeout=SQLITE_TIMEOUT_S) as con:
                con.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
            con.close()
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open the gradebook {mask(url)}: {_scrub(exc, url)}") from None
        return
    engine = create_engine(url)
    try:
        with engine.connect() as con:
            con.execute(text("SELECT 1"))
    except Exception as exc:
        raise error_from(exc, url) from None
    finally:
        engine.dispose()


def error_from(exc, url):
    """A :class:`DatabaseError` (one line, password masked) for a driver or SQLAlchemy exception."""
    orig = getattr(exc, "orig", None) or exc
    return DatabaseError(f"cannot use the gradebook database {mask(url)}: "
                         f"{_scrub(orig, url) or type(orig).__name__}")



def save_autogrades(gb, nb, assignment, notebook, student):
    """Store the autograded notebook ``nb`` (an nbformat NotebookNode) in the open gradebook ``gb`` in ONE
    transaction: what nbgrader's SaveAutoGrades does, which commits after every cell, so a reader
    (``export`` while ``grade`` writes) could see a notebook half-graded."""
    from nbgrader import utils
    log = logging.getLogger(__name__)
    try:
        for cell in nb.cells:
            if utils.is_grade(cell):
                grade = gb.find_grade(cell.metadata.nbgrader.grade_id, notebook, assignment, student)
                grade.auto_score, _ = utils.determine_grade(cell, log)
                # a manual grade, or no autograder score, needs a human to look at it
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            if utils.is_solution(cell):
                comment = gb.find_comment(cell.metadata.nbgrader.grade_id, notebook, assignment, student)
                unchanged = cell.metadata.nbgrader.get("checksum", None) == utils.compute_checksum(cell)
                comment.auto_comment = "No response." if unchanged and not utils.is_task(cell) else None
        gb.db.commit()
    except BaseException:
        gb.db.rollback()
        raise
