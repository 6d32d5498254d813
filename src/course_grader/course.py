"""The course directory: nbgrader's configuration, paths, gradebook and apps."""
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader


class CourseError(Exception):
    """A problem the instructor must fix (the message says how)."""


class Course:
    """A course directory: ``root`` holds ``nbgrader_config.py``; ``db_url`` is the checked gradebook URL.

    nbgrader itself (seconds to import) is loaded only when a path, an app or the ORM gradebook is
    first needed (:attr:`coursedir`), so ``export`` starts fast.
    """

    def __init__(self, root=".", db_url=None):
        self.root = os.path.abspath(root)
        if not os.path.isdir(self.root):
            raise CourseError(f"--course-dir: the course directory {self.root} does not exist "
                              f"(create one with `course-grader init {root}`)")
        path = os.path.join(self.root, "nbgrader_config.py")
        if not os.path.isfile(path):
            raise CourseError(f"--course-dir: {self.root} is not a course directory: it has no nbgrader_config.py "
                              f"(create one with `course-grader init DIR`, or pass --course-dir)")
        cfg = Config()
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=self.root).load_config())
        cfg.CourseDirectory.root = self.root
        from .database import prepare_url
        url = db_url or cfg.CourseDirectory.get("db_url") or default_db_url(self.root)
        # the checked URL, with the busy timeout (SQLite) or connect timeout (PostgreSQL) in it
        cfg.CourseDirectory.db_url = prepare_url(url)
        self.config = cfg
        self.db_url = cfg.CourseDirectory.db_url
        self._coursedir = None
        self._connected = False

    @property
    def coursedir(self):
        """nbgrader's CourseDirectory of this course (created, and nbgrader imported, on first use)."""
        if self._coursedir is None:
            from nbgrader.coursedir import CourseDirectory
            self._coursedir = CourseDirectory(config=self.config)
        return self._coursedir

    # -- paths ---------------------------------------------------------------------------
    def dir(self, kind, student=".", assignment=""):
        name = getattr(self.coursedir, f"{kind}_directory")
        return os.path.normpath(self.coursedir.format_path(name, student, assignment))

    def assignments(self):
        src = self.dir("source")
        if not os.path.isdir(src):
            raise CourseError(f"no source directory {src}")
        return sorted(d for d in os.listdir(src)
                      if os.path.isdir(os.path.join(src, d)) and not d.startswith((".", "_"))
                      and glob.glob(os.path.join(src, d, "*.ipynb")))

    def notebooks(self, assignment):
        """Names (without .ipynb) of the assignment's notebooks, from the source directory."""
        src = self.dir("source", ".", assignment)
        names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(src, "*.ipynb")))
        if not names:
            raise CourseError(f"assignment {assignment!r} has no notebooks in {src}")
        return names

    def load_pair(self, assignment, notebook):
        """(source notebook, released notebook) as dicts."""
        src = os.path.join(self.dir("source", ".", assignment), notebook + ".ipynb")
        rel = os.path.join(self.dir("release", ".", assignment), notebook + ".ipynb")
        if not os.path.exists(rel):
            raise CourseError(f"{rel} does not exist: run `course-grader release {assignment}` first")
        with open(src, encoding="utf-8") as f:
            source = json.load(f)
        with open(rel, encoding="utf-8") as f:
            release = json.load(f)
        for nb in (source, release):
            for c in nb["cells"]:
                if isinstance(c.get("source"), list):
                    c["source"] = "".join(c["source"])
        return source, release

    def results_path(self, assignment, student):
        return os.path.join(self.root, "grader_results", assignment, f"{student}.json")

    def submitted_students(self, assignment):
        base = self.dir("submitted")
        if not os.path.isdir(base):
            return []
        return sorted(s for s in os.listdir(base) if os.path.isdir(os.path.join(base, s, assignment)))

    # -- nbgrader ------------------------------------------------------------------------
    def check_database(self):
        """Connect to the gradebook once per Course; a DatabaseError (one line) says why not."""
        if not self._connected:
            from .database import check_connection
            check_connection(self.db_url)
            self._connected = True

    def api(self):
        from nbgrader.apps import NbGraderAPI
        self.check_database()
        return NbGraderAPI(coursedir=self.coursedir, config=self.config)

    def gradebook(self):
        """nbgrader's Gradebook on this course's database (safe with a second writer: see database.py)."""
        from .database import error_from
        from .gradebook import SharedGradebook
        self.check_database()
        try:
            return SharedGradebook(self.db_url, self.coursedir.course_id)
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError
            if isinstance(exc, SQLAlchemyError):
                raise error_from(exc, self.db_url) from None
            raise

    def nbgrader(self, *args):
        """Run an nbgrader app in the course directory (a subprocess, like the instructor would)."""
        cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={self.root}",
               f"--CourseDirectory.db_url={self.db_url}"]
        return subprocess.run(cmd, cwd=self.root, capture_output=True, text=True)

    def timestamp_of(self, folder):
        return self.coursedir.get_existing_timestamp(folder)


def default_db_url(root):
    """nbgrader's default gradebook URL for a course at ``root`` (``CourseDirectory._db_url_default``)."""
    return "sqlite:///{}".format(os.path.abspath(os.path.join(root, "gradebook.db")))


def now_stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def copy_submission(src_dir, dest_dir, timestamp=None):
    """Replace dest_dir with the files of src_dir, and write nbgrader's timestamp.txt."""
    if os.path.isdir(dest_dir):
        shutil.rmtree(dest_dir)
    shutil.copytree(src_dir, dest_dir, symlinks=False,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    stamp = os.path.join(dest_dir, "timestamp.txt")
    if not os.path.exists(stamp):
        with open(stamp, "w") as f:
            f.write(timestamp or now_stamp())
