"""`course-grader init DIR`: a private course directory, made from the public repository.

Students install the course from the public repository; everything about a class (submissions,
grades, feedback, reports, the gradebook) and the hidden tests belong somewhere else. ``init``
creates that place::

    DIR/
      nbgrader_config.py   the repository's configuration, with nbgrader's own folder names:
                           source/ (the instructor's notebooks) and release/ (the student versions)
      source/<a>/<a>.ipynb copied from the repository's solutions/<a>/ (solutions and hidden tests)
      mathjax/             the book's MathJax 3, shipped with every feedback page
      .gitignore           student data, should DIR itself be put under version control

Then every command runs inside DIR (the default ``--course-dir .``) or with ``--course-dir DIR``.
Nothing is written into the repository.
"""
import os
import shutil
from pathlib import Path

from . import mathjax
from .course import CourseError

#: the repository this package is installed from (an editable install or a checkout)
REPOSITORY = Path(__file__).resolve().parents[2]
STUDENT_DATA = ["submitted/", "autograded/", "feedback/", "grader_results/", "export/", "reports/", "downloaded/",
                "release/", "gradebook.db*", ".ipynb_checkpoints/"]
CONFIG_TAIL = '''

# --- written by `course-grader init` ------------------------------------------------------------
# A private course directory: nbgrader's own folder names. The instructor's notebooks (solutions and
# hidden tests) are in source/, copied from the public repository's solutions/; `course-grader release`
# writes the student versions into release/. Student data (submitted/, autograded/, feedback/,
# grader_results/, export/, reports/, gradebook.db) stays here, never in the public repository.
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
'''


def assignments_of(repo):
    """The assignment folders of the repository's ``solutions/`` (those holding a notebook)."""
    sol = Path(repo) / "solutions"
    return sorted(d.name for d in sol.iterdir()
                  if d.is_dir() and not d.name.startswith((".", "_")) and any(d.glob("*.ipynb")))


def _check_source(repo):
    repo = Path(repo).resolve()
    if not (repo / "nbgrader_config.py").is_file() or not (repo / "solutions").is_dir():
        raise CourseError(f"--source: {repo} is not the course repository (no nbgrader_config.py and solutions/)")
    return repo


def init_course(directory, source=None, force=False):
    """Create the private course directory ``directory`` from the repository ``source``; return its path.

    Raises
    ------
    CourseError
        If ``source`` is not the course repository, ``directory`` lies inside it, or ``directory``
        exists and is not empty (without ``force``).
    """
    repo = _check_source(source or REPOSITORY)
    root = Path(directory).resolve()
    if root == repo or repo in root.parents:
        raise CourseError(f"init: {root} is inside the public repository {repo}; "
                          "choose a private directory outside it (student data must not be one `git add` away)")
    if root.exists() and not root.is_dir():
        raise CourseError(f"init: {root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise CourseError(f"init: {root} is not empty (use --force to add the missing files)")
    names = assignments_of(repo)
    if not names:
        raise CourseError(f"--source: {repo / 'solutions'} holds no assignment notebooks (run `make release`)")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "nbgrader_config.py"
    if not config.exists():
        config.write_text((repo / "nbgrader_config.py").read_text(encoding="utf-8") + CONFIG_TAIL, encoding="utf-8")
    for name in names:
        dest = root / "source" / name
        if not dest.exists():
            shutil.copytree(repo / "solutions" / name, dest,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    if not (root / "mathjax").exists() and (mathjax.REPOSITORY_COPY / mathjax.ENTRY).is_file():
        mathjax.copy_tree(mathjax.REPOSITORY_COPY, root / "mathjax")
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# student data of this course: never publish it\n" + "\n".join(STUDENT_DATA) + "\n")
    return str(root)
