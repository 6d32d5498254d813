"""Every solution passes its own hidden tests for any student's seed, not just for seed 0.

Hidden test blocks draw their cases from ``np.random.default_rng([GRADING_SEED, <constant>])`` with
GRADING_SEED = course_grader.seeds.grading_seed(student, assignment). A generator that can draw an
invalid case (a kernel larger than its input, say) fails the correct answer for some students only,
which a check at seed 0 never sees. Here each built solution notebook (solution cells and hidden
tests, as in ``solutions/<a>/<a>.ipynb``) is executed in this process for the seeds of several
students; every cell must run without error.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from course_grader.seeds import SEED_NAME, grading_seed

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted(p for p in (ROOT / "solutions").glob("*/*.ipynb") if not p.parent.name.startswith("_"))
STUDENTS = ["ada", "grace", "alan", "emmy", "john"]


def test_every_assignment_is_checked():
    """Every assignment of the build has a built solution notebook here (no silently empty run)."""
    sources = {p.name.split(".")[0] for p in (ROOT / "solutions" / "_sources").glob("*.nb.txt")}
    assert sources and sources == {p.parent.name for p in SOLUTIONS}


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name)
def test_solution_passes_hidden_tests_for_every_student_seed(path):
    """The solution's code cells, hidden tests included, raise nothing for five students' seeds."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = [(c.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {i}", "".join(c["source"]))
             for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    hidden = [gid for gid, src in cells if "BEGIN HIDDEN TESTS" in src]
    assert hidden, f"{path.parent.name} has no hidden tests"
    failures = []
    for student in STUDENTS:
        seed = grading_seed(student, path.parent.name)
        ns = {"__name__": "__main__", SEED_NAME: seed}
        for gid, src in cells:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(src, f"<{gid}>", "exec"), ns)
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                failures.append(f"{student} (seed {seed}) {gid}: {type(exc).__name__}: {str(exc)[:300]}")
                break
    assert not failures, "\n".join(failures)
