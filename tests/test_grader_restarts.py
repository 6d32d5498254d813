"""A cell that kills the student's process costs only the parts that depend on it (issue 12, point 4).

Each variant is a real notebook graded once through the real job pipeline (jobs.Job -> work.grade_job,
the bubblewrap sandbox, tests/grader_helpers.grade_notebook) with small limits. The notebook has four
parts; part 4's answer calls part 2's function, so a failure in part 2 costs parts 2 and 4 and nothing
else; a failure in a scratch cell costs nothing but a flag. Restarts are bounded: a notebook of many
infinite loops gets at most MAX_RESTARTS fresh sandboxes, then the rest is "not graded".
"""
import copy
import json
import time
from types import SimpleNamespace

import pytest

from course_grader import replay
from course_grader.sandbox import Limits
from tests.grader_helpers import grade_notebook, needs_bwrap

pytestmark = needs_bwrap

LIMITS = Limits(cell_timeout=1.0, notebook_timeout=40, memory_mb=300)
ANSWERS = {"one": "def one():\n    return 1\n", "two": "def two():\n    return 2\n",
           "three": "def three():\n    return 3\n", "four": "def four():\n    return two() + 2\n"}
LOOP = "while True:\n    pass\n"


def _cell(kind, source, gid=None, points=None):
    if kind == "md":
        return {"cell_type": "markdown", "metadata": {}, "source": source, "id": f"md-{len(source)}"}
    meta = {}
    if kind == "setup":
        meta = {"grade": False, "solution": False, "locked": True, "grade_id": gid, "schema_version": 3}
    elif kind == "answer":
        meta = {"grade": False, "solution": True, "locked": False, "grade_id": gid, "schema_version": 3}
    elif kind == "test":
        meta = {"grade": True, "solution": False, "locked": True, "grade_id": gid, "points": points,
                "schema_version": 3}
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"nbgrader": meta} if meta else {},
            "outputs": [], "source": source}
    if gid:
        cell["id"] = gid
    return cell


def source_notebook():
    cells = [_cell("md", "# Four parts"), _cell("setup", "import numpy as np\n", "setup")]
    for gid, answer in ANSWERS.items():
        cells.append(_cell("answer", "### BEGIN SOLUTION\n" + answer + "### END SOLUTION\n", gid))
        cells.append(_cell("test", f'"""{gid}() is right."""\nassert {gid}() == {len(cells) // 2}\n',
                           f"test_{gid}", 1))
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


SOURCE = source_notebook()
RELEASE = copy.deepcopy(SOURCE)
for _c in RELEASE["cells"]:
    if _c["metadata"].get("nbgrader", {}).get("solution"):
        _c["source"] = "# YOUR CODE HERE\nraise NotImplementedError()\n"
EXPECTED_POINTS = {f"test_{g}": 1.0 for g in ANSWERS}


def student(answers=None, after=None):
    """The released notebook answered (``answers`` override the reference), with scratch cells
    (``after``: grade_id of the test cell -> code) put after those test cells."""
    nb = copy.deepcopy(RELEASE)
    cells = []
    for c in nb["cells"]:
        gid = c["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in ANSWERS:
            c["source"] = (answers or {}).get(gid, ANSWERS[gid])
        cells.append(c)
        if after and gid in after:
            cells.append(_cell("scratch", after[gid]))
    nb["cells"] = cells
    return nb


VARIANTS = {
    "loop_in_answer": student({"two": ANSWERS["two"] + LOOP}),
    "loop_defining_nothing": student({"two": LOOP}),
    "loop_when_called": student({"two": "def two():\n    while True:\n        pass\n"}),
    "killed_in_scratch": student(after={"test_one": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"}),
    "exit_in_scratch": student(after={"test_two": "import os\nos._exit(3)\n"}),
    "segfault_in_scratch": student(after={"test_three": "import ctypes\nctypes.string_at(0)\n"}),
    "memory_in_scratch": student(after={"test_one": "import numpy as np\nblocks = []\nwhile True:\n"
                                                    "    blocks.append(np.ones(10 ** 7))\n"}),
    "memory_in_answer": student({"two": "def two():\n    blocks = []\n    while True:\n"
                                        "        blocks.append(np.ones(10 ** 7))\n"}),
    "many_loops": student(after={"test_one": LOOP, "test_two": LOOP, "test_three": LOOP},
                          answers={"four": LOOP + ANSWERS["four"]}),
}
LOST = {"loop_in_answer": {"test_two", "test_four"}, "loop_defining_nothing": {"test_two", "test_four"}, "loop_when_called": {"test_two", "test_four"},
        "memory_in_answer": {"test_two", "test_four"}, "many_loops": {"test_four"}}
FLAGS = {"loop_in_answer": ["timeout"], "loop_defining_nothing": ["timeout"], "loop_when_called": ["timeout"], "killed_in_scratch": ["crash"],
         "exit_in_scratch": ["crash"], "segfault_in_scratch": ["crash"], "memory_in_scratch": ["memory"],
         "memory_in_answer": ["memory"], "many_loops": ["timeout"] * (replay.MAX_RESTARTS + 1)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("restarts")
    results, seconds = {}, {}
    for name, nb in VARIANTS.items():
        path = folder / f"{name}.ipynb"
        path.write_text(json.dumps(nb))
        t0 = time.monotonic()
        results[name] = grade_notebook(SOURCE, RELEASE, path, LIMITS)
        seconds[name] = time.monotonic() - t0
    return SimpleNamespace(results=results, seconds=seconds)


def test_the_reference_notebook_earns_every_point(tmp_path):
    path = tmp_path / "reference.ipynb"
    path.write_text(json.dumps(student()))
    result = grade_notebook(SOURCE, RELEASE, path, LIMITS)
    assert result["flags"] == [] and {g: t["points"] for g, t in result["tests"].items()} == EXPECTED_POINTS


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_dead_sandbox_costs_only_the_parts_that_depend_on_it(graded, name):
    result = graded.results[name]
    lost = LOST.get(name, set())
    got = {g: t["points"] for g, t in result["tests"].items()}
    assert got == {g: (0.0 if g in lost else p) for g, p in EXPECTED_POINTS.items()}, (name, result["tests"])
    for gid in lost:
        assert result["tests"][gid]["message"].startswith("not graded: "), result["tests"][gid]
    assert [f[0] for f in result["flags"]] == FLAGS[name], result["flags"]
    assert result["status"] == "graded"


def test_a_part_using_a_broken_function_names_it_and_the_reason(graded):
    for name in ("loop_in_answer", "loop_when_called"):
        message = graded.results[name]["tests"]["test_four"]["message"]
        # the CPU time limit, or on a loaded machine the wall-clock bound
        assert "this part uses four" in message and ("time limit" in message or "wall-clock limit" in message), message
    message = graded.results["memory_in_answer"]["tests"]["test_four"]["message"]
    assert "memory" in message, message


def test_the_flag_says_the_notebook_went_on(graded):
    for name in ("loop_in_answer", "killed_in_scratch", "memory_in_scratch"):
        (flag,) = graded.results[name]["flags"]
        assert "fresh sandbox" in flag[1] and "parts that do not depend on it were graded" in flag[1], flag


def test_restarts_are_capped_and_the_notebook_stays_within_its_budget(graded):
    result = graded.results["many_loops"]
    details = [f[1] for f in result["flags"]]
    assert sum("fresh sandbox" in d for d in details) == replay.MAX_RESTARTS, details
    assert result["tests"]["test_four"]["message"].startswith("not graded: "), result["tests"]["test_four"]
    # four cells of 1 s CPU each (wall clock at most wall_slack times that), four sandbox starts and replays:
    # well within the notebook's wall-clock budget, which every fresh sandbox shares
    assert graded.seconds["many_loops"] < LIMITS.notebook_timeout, graded.seconds
