"""The gradebook database through the real `course-grader` command: a wrong --db-url (unreachable
server, bad password, malformed URL, missing driver) is one clear line on stderr, exit status 2, no
traceback and never the password; SQLite gradebooks are switched to WAL; URLs are masked."""
import shutil
import sqlite3

import pytest

from course_grader.database import DatabaseError, mask, prepare_url
from tests.grader_helpers import REPO, run
from tests.postgres_server import free_port

SECRET = "s3cr3t-Pa55word"


@pytest.fixture
def empty_course(tmp_path):
    """A course folder with one assignment's source, not released: nothing but the database can fail."""
    (tmp_path / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    shutil.copytree(REPO / "solutions" / "conv2d", tmp_path / "solutions" / "conv2d")
    return tmp_path


def one_line_error(proc, *expected):
    """The command failed with exactly one line on stderr containing every ``expected`` text."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("course-grader: error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert SECRET not in proc.stderr + proc.stdout
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", [["export"], ["release", "--all"], ["report", "conv2d"]])
def test_unreachable_server_is_one_line(empty_course, command):
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://grader:{SECRET}@127.0.0.1:{port}/gradebook"
    proc = run(empty_course, "--db-url", url, *command, ok=False)
    one_line_error(proc, f"grader:***@127.0.0.1:{port}/gradebook", "Connection refused")


def test_bad_password_is_one_line_and_not_echoed(empty_course, postgres):
    url = postgres.create_database()
    name = url.rsplit("/", 1)[1]
    proc = run(empty_course, "--db-url", postgres.url(name, password=SECRET), "export", ok=False)
    one_line_error(proc, "password authentication failed", f"grader:***@127.0.0.1:{postgres.port}/{name}")
    # the right password works through the same command: the server and database were fine
    ok = run(empty_course, "--db-url", url, "export")
    assert "students.csv" in ok.stdout


def test_missing_database_is_one_line(empty_course, postgres):
    proc = run(empty_course, "--db-url", postgres.url("no_such_db"), "export", ok=False)
    one_line_error(proc, 'database "no_such_db" does not exist')
    assert postgres.password not in proc.stderr


@pytest.mark.parametrize("url, expected", [
    ("not a url", "--db-url is not a database URL, got 'not a url'"),
    (f"mysql://me:{SECRET}@127.0.0.1/db", "unsupported database 'mysql'"),
    (f"postgresql+psycopg2://me:{SECRET}@127.0.0.1/db", "needs the Python module 'psycopg2'"),
    ("sqlite://", "the gradebook must be a file"),
    ("sqlite:////no/such/folder/gradebook.db", "the folder /no/such/folder does not exist"),
])
def test_bad_url_is_one_line(empty_course, url, expected):
    proc = run(empty_course, "--db-url", url, "export", ok=False)
    one_line_error(proc, expected)


def test_sqlite_gradebook_is_wal_with_busy_timeout(empty_course):
    run(empty_course, "export")
    with sqlite3.connect(empty_course / "gradebook.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    assert prepare_url(f"sqlite:///{empty_course}/gradebook.db").endswith("gradebook.db?timeout=60")
    assert prepare_url(f"sqlite:///{empty_course}/g.db?timeout=5").endswith("g.db?timeout=5")


def test_postgresql_url_gets_connect_timeout_and_masks():
    url = f"postgresql+psycopg://me:{SECRET}@db.example:5432/grades"
    assert prepare_url(url) == f"postgresql+psycopg://me:{SECRET}@db.example:5432/grades?connect_timeout=10"
    assert mask(url) == "postgresql+psycopg://me:***@db.example:5432/grades"
    assert SECRET not in mask(f"weird://me:{SECRET}@host/x y")
    with pytest.raises(DatabaseError, match="must name a database"):
        prepare_url(f"postgresql+psycopg://me:{SECRET}@db.example:5432")
