"""Shared helpers for the course-grader tests: the repository and the `course-grader` command,
nbgrader cell accessors, reference answers and points of a source notebook, a temporary course,
and the attack programs more than one suite runs."""
import copy
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("course-grader"))
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


def nbg(cell):
    """A cell's nbgrader metadata (empty if it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def cell_text(cell):
    """A cell's source as one string (nbformat allows a list of lines or a string)."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def reference_answers(source_nb):
    """grade_id -> the reference answer without the BEGIN/END SOLUTION markers."""
    return {nbg(c)["grade_id"]: "".join(l for l in cell_text(c).splitlines(True)
                                        if "### BEGIN SOLUTION" not in l and "### END SOLUTION" not in l)
            for c in source_nb["cells"] if nbg(c).get("solution")}


def graded_points(source_nb):
    """grade_id -> points of every graded test cell (graded cells that are not answers)."""
    return {nbg(c)["grade_id"]: float(nbg(c)["points"]) for c in source_nb["cells"]
            if nbg(c).get("grade") and not nbg(c).get("solution")}


def student_notebook(release_nb, answers):
    """A copy of the released notebook with the cells of ``answers`` (grade_id -> source) filled in."""
    nb = copy.deepcopy(release_nb)
    for c in nb["cells"]:
        if nbg(c).get("grade_id") in answers:
            c["source"] = answers[nbg(c)["grade_id"]]
    return nb


def flipped_conv2d(answer):
    """The conv2d answer turned into a true convolution (flipped kernel): a classic mistake."""
    return (answer.rstrip() + "\n\n\n_conv2d_cross = conv2d\n\n\n"
            "def conv2d(x, w, b=None, stride=1, padding=0):\n"
            "    return _conv2d_cross(x, np.asarray(w)[..., ::-1, ::-1], b, stride, padding)\n")


def run(course, *args, ok=True, timeout=600):
    """Run `course-grader --course-dir course *args`; with ``ok``, assert it succeeded."""
    proc = subprocess.run([CLI, "--course-dir", str(course), *args], capture_output=True, text=True, timeout=timeout)
    if ok:
        assert proc.returncode == 0, f"course-grader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def new_course(tmp_path_factory, prefix, assignments):
    """A temporary course folder with the repository's nbgrader_config.py and the source folders of
    ``assignments`` copied in (not yet released); skips the test if a source notebook is missing."""
    for a in assignments:
        source = REPO / "solutions" / a / f"{a}.ipynb"
        if not source.exists():
            pytest.skip(f"{source} does not exist yet")
    root = tmp_path_factory.mktemp(prefix)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for a in assignments:
        shutil.copytree(REPO / "solutions" / a, root / "solutions" / a)
    return root


# A student cell that forks until the process limit is reached (the children sleep).
FORK_BOMB = """import os, time
while True:
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
    except OSError:
        pass
"""
