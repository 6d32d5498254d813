"""The book's local MathJax 3, shipped beside every feedback page so its formulas typeset offline.

nbconvert's HTML templates load MathJax 2.7.7 from a CDN; a student who opens the feedback page
without internet sees raw ``$...$``. The feedback template of course_grader
(``templates/course_feedback/mathjax.html.j2``) loads ``_mathjax/tex-mml-chtml.js`` relative to the
page instead, and :func:`ship` puts that folder (the combined TeX/MathML/CHTML component, the TeX
extensions it autoloads and the woff-v2 fonts, about 2 MB) into the page's folder
``feedback/<student>/<assignment>/``: hard links where the file system allows, copies otherwise, so
a course with many students costs the disk space once. The folder the student receives is complete.
"""
import os
import shutil
from pathlib import Path

from .course import CourseError

#: folder name beside the feedback pages (the template's script src is relative to it)
FOLDER = "_mathjax"
ENTRY = "tex-mml-chtml.js"
#: what the combined component needs at run time, relative to the MathJax root
PARTS = (ENTRY, "LICENSE", "input/tex/extensions", "output/chtml/fonts/woff-v2")
#: where the public repository keeps the book's MathJax (served by Jupyter Book from _static/mathjax/)
REPOSITORY_COPY = Path(__file__).resolve().parents[2] / "book" / "_assets" / "mathjax"


def candidates(course_root):
    """Folders searched for MathJax, in order: ``<course>/mathjax`` (written by ``course-grader init``)
    and the repository's ``book/_assets/mathjax``."""
    return [Path(course_root) / "mathjax", REPOSITORY_COPY]


def find(course_root):
    """The MathJax root folder to ship (it holds ``tex-mml-chtml.js``).

    Raises
    ------
    CourseError
        If no candidate folder holds the MathJax entry script.
    """
    for root in candidates(course_root):
        if (root / ENTRY).is_file():
            return root
    tried = " or ".join(str(r / ENTRY) for r in candidates(course_root))
    raise CourseError(f"MathJax for the feedback pages not found: expected {tried}")


def _link_or_copy(src, dest):
    if dest.exists():
        if os.path.samefile(src, dest):
            return
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dest)


def copy_tree(mathjax_root, dest_root):
    """Link (or copy) the run-time files of ``mathjax_root`` into ``dest_root``; return ``dest_root``."""
    mathjax_root, dest_root = Path(mathjax_root), Path(dest_root)
    for part in PARTS:
        src = mathjax_root / part
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        for f in files:
            dest = dest_root / f.relative_to(mathjax_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(f, dest)
    return dest_root


def ship(mathjax_root, page_dir):
    """Put ``_mathjax/`` into ``page_dir`` (a folder of feedback pages); return its path."""
    return copy_tree(mathjax_root, Path(page_dir) / FOLDER)
