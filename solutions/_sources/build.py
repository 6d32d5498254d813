"""Build the nbgrader source notebooks ``solutions/<a>/<a>.ipynb`` from readable sources.

Each assignment is written as a plain-text file ``solutions/_sources/<a>.nb.txt``: a
sequence of cells, each introduced by a header line starting with ``#%%``::

    #%% md <id>                 read-only markdown (locked)
    #%% setup <id>              read-only instructor code (locked): imports, data, helpers
    #%% answer <id>             an autograded answer cell (solution=true): the student's function
    #%% test <id> <points>      an autograder test cell (grade=true, locked) worth <points>
    #%% scratch <id>            a free code cell for the student (not graded, not locked)

In setup cells, ``{CHECK_HELPERS}`` is replaced by ``check_helpers.py`` (the assertion
helpers every notebook's tests use: shape first, then dtype, then values; its ``_ANSWERS``
becomes the names the answer cells define, whose code the helpers check for cnnmath), and
``{CHECK_EXPRESSIONS}`` by ``check_expressions.py`` (the checker of derived SymPy formulas:
exact comparison on an integer grid in a time-limited child process).

``<id>`` becomes both the cell id and nbgrader's ``grade_id`` (descriptive and unique
per notebook). In markdown, ``{TOTAL_POINTS}`` and ``{POINTS_TABLE}`` are replaced by
the total and by a table of every graded part, computed from the test headers, so
the stated points can never disagree with the graded ones.

The output is deterministic (sorted keys, fixed cell ids, no execution counts), so
rebuilding an unchanged source gives a byte-identical notebook.

Usage::

    python solutions/_sources/build.py            # build every assignment
    python solutions/_sources/build.py conv2d     # build one
    python solutions/_sources/build.py --check    # fail if a built notebook is stale
    python solutions/_sources/build.py --list     # the assignments that have a source
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SOURCES = Path(__file__).resolve().parent
SOLUTIONS = SOURCES.parent

# In teaching order; the folder names are fixed by the grading contract.
ASSIGNMENTS = [
    "conv1d",
    "conv2d",
    "output_size",
    "pooling",
    "conv_backward",
    "conv_transpose",
    "receptive_field",
    "conv3d",
    "local_tiled",
    "im2col",
    "full_network",
    "activations_losses",
    "derivations",
    "aliasing_gp_invertibility",
    "efficient_counting",
]

RULES = """## Rules (read before you start)

- Write your code only inside the functions, in place of `raise NotImplementedError()`. Don't rename the
  functions or change their arguments; a test cell may only be run, never edited (the grader restores it).
- **NumPy only.** Calling, importing or copying the course library `cnnmath` in an answer earns **0 points
  for that part**: the grading sandbox cannot import it and the grader flags answers that mention it. Don't
  use PyTorch or SciPy's convolution routines either: the point is to write the index arithmetic yourself.
- Arguments and results are plain data: NumPy arrays, numbers, tuples, lists. Return floating NumPy arrays;
  float32 inputs give float32 results, other inputs float64.
- Conventions of the course: channels-first layout `(N, C, H, W)`; deep learning's "convolution" is
  **cross-correlation** (no kernel flip) unless a task says *true convolution*; indices are **0-based**
  (the seeds sometimes count from 1); dilation counts from 1 as in PyTorch (dilation 1 = ordinary kernel).
- Each graded part has visible tests (the seeds' worked numbers and small cases you can check by hand) and
  **hidden tests** added at grading time (random shapes, strides, paddings and dtypes compared with the
  reference implementation). Passing the visible tests is necessary, not sufficient: solve the general case.
- Before submitting: *Kernel → Restart & Run All*, then run `nbgrader validate <this notebook>.ipynb`
  (see the course README, "For students")."""

KINDS = {"md", "setup", "answer", "test", "scratch"}
HEADER = re.compile(r"^#%%\s+(?P<kind>\w+)\s+(?P<id>[A-Za-z0-9_-]+)(?:\s+(?P<points>\d+(?:\.\d+)?))?\s*$")


def parse(text: str, where: str) -> list[dict]:
    """Split a source into ``{"kind", "id", "points", "source"}`` dicts."""
    cells: list[dict] = []
    current = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith("#%%"):
            m = HEADER.match(line)
            if not m or m["kind"] not in KINDS:
                raise ValueError(f"{where}:{lineno}: bad cell header {line!r}")
            if (m["kind"] == "test") != (m["points"] is not None):
                raise ValueError(f"{where}:{lineno}: points are required on (and only on) test cells")
            current = {"kind": m["kind"], "id": m["id"],
                       "points": float(m["points"]) if m["points"] else None, "lines": []}
            cells.append(current)
        elif current is None:
            if line.strip():
                raise ValueError(f"{where}:{lineno}: text before the first cell header")
        else:
            current["lines"].append(line)
    ids = [c["id"] for c in cells]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"{where}: duplicate cell ids {sorted(dup)}")
    for c in cells:
        c["source"] = "\n".join(c.pop("lines")).strip("\n")
        if c["kind"] == "test":
            first = c["source"].lstrip().splitlines()[0] if c["source"].strip() else ""
            if not first.startswith('"""'):
                raise ValueError(f"{where}: test cell {c['id']} must start with a docstring")
            if "### BEGIN HIDDEN TESTS" in c["source"]:
                hidden = c["source"].split("### BEGIN HIDDEN TESTS", 1)[1]
                if "### END HIDDEN TESTS" not in hidden:
                    raise ValueError(f"{where}: test cell {c['id']} has an unterminated hidden block")
            visible = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", c["source"], flags=re.S)
            if "cnnmath" in visible:
                raise ValueError(f"{where}: test cell {c['id']} uses cnnmath outside its hidden block")
        if c["kind"] == "answer" and "### BEGIN SOLUTION" not in c["source"]:
            raise ValueError(f"{where}: answer cell {c['id']} has no ### BEGIN SOLUTION region")
        if c["kind"] in {"setup", "answer", "scratch"} and "cnnmath" in c["source"]:
            raise ValueError(f"{where}: cell {c['id']} mentions cnnmath (only hidden tests may use it)")
    return cells


def points_table(cells: list[dict]) -> str:
    rows = ["| graded part (`grade_id`) | what it checks | points |", "|---|---|---:|"]
    for c in cells:
        if c["kind"] == "test":
            doc = c["source"].lstrip()[3:].split('"""', 1)[0].strip().splitlines()[0]
            rows.append(f"| `{c['id']}` | {doc} | {c['points']:g} |")
    total = sum(c["points"] for c in cells if c["kind"] == "test")
    rows.append(f"| **total** | | **{total:g}** |")
    return "\n".join(rows)


def nbgrader_meta(kind: str, grade_id: str, points) -> dict | None:
    if kind == "scratch":
        return None
    meta = {"grade": kind == "test", "grade_id": grade_id, "locked": kind in {"md", "setup", "test"},
            "schema_version": 3, "solution": kind == "answer", "task": False}
    if kind == "test":
        meta["points"] = int(points) if float(points).is_integer() else points
    return meta


def answer_names(cells: list[dict]) -> set[str]:
    """The functions and classes the answer cells define (what the helpers check for cnnmath)."""
    import ast
    return {node.name for c in cells if c["kind"] == "answer" for node in ast.parse(c["source"]).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def build_notebook(cells: list[dict]) -> dict:
    total = sum(c["points"] for c in cells if c["kind"] == "test")
    table = points_table(cells)
    helpers = (SOURCES / "check_helpers.py").read_text(encoding="utf-8").strip()
    answers = sorted(answer_names(cells))
    helpers = helpers.replace("_ANSWERS = ()  #", f"_ANSWERS = {tuple(answers)!r}  #", 1)
    expressions = (SOURCES / "check_expressions.py").read_text(encoding="utf-8").strip()
    out = []
    for c in cells:
        src = c["source"]
        if c["kind"] == "setup":
            src = src.replace("{CHECK_HELPERS}", helpers).replace("{CHECK_EXPRESSIONS}", expressions)
        if c["kind"] == "md":
            src = (src.replace("{TOTAL_POINTS}", f"{total:g}").replace("{POINTS_TABLE}", table)
                   .replace("{RULES}", RULES))
        cell = {"cell_type": "markdown" if c["kind"] == "md" else "code", "id": c["id"],
                "metadata": {}, "source": src}
        meta = nbgrader_meta(c["kind"], c["id"], c["points"])
        if meta:
            cell["metadata"]["nbgrader"] = meta
        if c["kind"] != "md":
            cell["execution_count"] = None
            cell["outputs"] = []
        out.append(cell)
    return {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(nb: dict) -> str:
    """Serialise like nbformat does (indent 1, sorted keys, source as a list of lines)."""
    import nbformat

    node = nbformat.from_dict(nb)
    nbformat.validate(node)
    text = nbformat.writes(node)
    return text if text.endswith("\n") else text + "\n"


def build(name: str, check: bool = False) -> bool:
    """Build ``solutions/<name>/<name>.ipynb``; return True if it was (or would be) changed."""
    src = SOURCES / f"{name}.nb.txt"
    cells = parse(src.read_text(encoding="utf-8"), str(src))
    text = render(build_notebook(cells))
    target = SOLUTIONS / name / f"{name}.ipynb"
    old = target.read_text(encoding="utf-8") if target.exists() else None
    if old == text:
        return False
    if not check:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return True


def available() -> list[str]:
    return [a for a in ASSIGNMENTS if (SOURCES / f"{a}.nb.txt").exists()]


def main(argv: list[str]) -> int:
    if "--list" in argv:
        print("\n".join(available()))
        return 0
    check = "--check" in argv
    names = [a for a in argv if not a.startswith("-")] or available()
    stale = []
    for name in names:
        if name not in ASSIGNMENTS:
            print(f"unknown assignment {name!r}; known: {', '.join(ASSIGNMENTS)}", file=sys.stderr)
            return 2
        if build(name, check=check):
            stale.append(name)
    if check and stale:
        print("stale solution notebooks (run `make release`): " + ", ".join(stale), file=sys.stderr)
        return 1
    if not check:
        print("built: " + (", ".join(stale) if stale else "nothing changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
