"""Every chapter executes cleanly from scratch: no cell error, every code cell run, no stderr.

The session's clean book build (tests/book_build.py) executes every chapter with
`execute_notebooks: force` in a fresh output directory (no execution cache, no Sphinx environment), and
myst-nb saves each executed notebook to _build/jupyter_execute/<page>.ipynb.  Checking those notebooks
gives the "execute every chapter, fail on any cell error" guarantee without executing the book twice.
"""
from __future__ import annotations

import nbformat
import pytest

from tests.book_build import book_build, chapter_sources, is_notebook  # noqa: F401

pytestmark = pytest.mark.slow

NOTEBOOK_PAGES = {page: src for page, src in chapter_sources().items() if src.exists() and is_notebook(src)}


def test_there_are_executable_chapters():
    """The book has executable chapters at all (guards against the list below being empty)."""
    assert len(NOTEBOOK_PAGES) >= 4, f"only {sorted(NOTEBOOK_PAGES)} are jupytext notebooks"


@pytest.mark.parametrize("page", sorted(NOTEBOOK_PAGES))
def test_chapter_executed_cleanly(book_build, page):
    """The chapter was executed in this build: every code cell ran, in order, with no error and no stderr."""
    executed = book_build.executed / (page + ".ipynb")
    assert executed.is_file(), (
        f"{page}: no executed notebook at {executed} (did the build fail before this page? "
        f"exit {book_build.returncode})")
    nb = nbformat.read(executed, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code_cells, f"{page}: no code cells were executed"
    counts = [c.get("execution_count") for c in code_cells]
    assert all(isinstance(n, int) for n in counts), f"{page}: cells not executed (execution_count {counts})"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), \
        f"{page}: cells not executed in order from a fresh kernel: {counts}"
    assert counts[0] == 1, f"{page}: first cell has execution_count {counts[0]}, expected a fresh kernel (1)"
    for i, cell in enumerate(code_cells):
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", (
                f"{page}: code cell {i + 1} raised {out.get('ename')}: {out.get('evalue')}\n"
                f"--- source ---\n{cell.source[:800]}")
            assert not (out.get("output_type") == "stream" and out.get("name") == "stderr"), (
                f"{page}: code cell {i + 1} wrote to stderr:\n{out.get('text', '')[:800]}")


@pytest.mark.parametrize("page", sorted(NOTEBOOK_PAGES))
def test_chapter_shows_a_figure(book_build, page):
    """Every chapter renders at least one figure (a PNG/SVG output, or an embedded animation)."""
    executed = book_build.executed / (page + ".ipynb")
    assert executed.is_file(), f"{page}: no executed notebook at {executed}"
    nb = nbformat.read(executed, as_version=4)
    figures = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if "image/png" in data or "image/svg+xml" in data:
                figures += 1
            elif "text/html" in data and ("<img" in data["text/html"] or "<svg" in data["text/html"]):
                figures += 1
    assert figures, f"{page}: no figure in any cell output (is MPLBACKEND set to a non-inline backend?)"
