"""The website prints no graded answer and no library source a student could paste into one.

The check is the grader's own copy detection (``course_grader.integrity``, token shingles, verbatim and
with identifiers renamed), run over every code block the built website shows (cell inputs, their
printed outputs, literal code blocks):

* every reference solution cell of every assignment in solutions/ (minus the stub the student is
  given) is compared with the website's code: a solution the website substantially contains fails;
* every website code block is compared with the reference library ``cnnmath``: a block the grader
  would flag as "copies code from the reference library" (e.g. a printed ``inspect.getsource``) fails,
  since pasting it into an answer earns 0 points.

Uses the session's single clean build (tests/book_build.py).
"""
from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from course_grader import integrity
from course_grader.notebook import is_answer, nbmeta
from tests.book_build import ROOT, book_build  # noqa: F401

pytestmark = pytest.mark.slow


class _PreBlocks(HTMLParser):
    """The text of every <pre> element of a page (nested markup such as highlighting spans dropped)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks, self._depth, self._buf = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "pre":
            self._depth += 1

    def handle_endtag(self, tag):
        if tag == "pre" and self._depth:
            self._depth -= 1
            if not self._depth:
                self.blocks.append("".join(self._buf))
                self._buf = []

    def handle_data(self, data):
        if self._depth:
            self._buf.append(data)


def site_code_blocks(html_dir: Path) -> dict[str, list[str]]:
    """Every <pre> block of every page of the built website, by page (relative path)."""
    out = {}
    for page in sorted(html_dir.rglob("*.html")):
        if "_static" in page.parts:
            continue
        parser = _PreBlocks()
        parser.feed(page.read_text(encoding="utf8", errors="replace"))
        blocks = [html.unescape(b) for b in parser.blocks if b.strip()]
        if blocks:
            out[str(page.relative_to(html_dir))] = blocks
    return out


def write_site_corpus(blocks: dict[str, list[str]], corpus: Path) -> Path:
    """One .py file per website code block (so no shingle spans two blocks), for integrity's ``root``."""
    corpus.mkdir(parents=True, exist_ok=True)
    for page, page_blocks in blocks.items():
        stem = re.sub(r"[^A-Za-z0-9]+", "_", page)
        for i, block in enumerate(page_blocks):
            (corpus / f"{stem}_{i:03d}.py").write_text(block, encoding="utf8")
    return corpus


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def solution_cells() -> list[tuple[str, str, str]]:
    """(assignment/grade_id, solution code, released stub) for every answer cell in solutions/."""
    cells = []
    for nb_path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        assignment = nb_path.parent.name
        released = ROOT / "exercises" / assignment / nb_path.name
        stubs = {}
        if released.exists():
            stubs = {nbmeta(c).get("grade_id"): _source(c)
                     for c in json.loads(released.read_text(encoding="utf8"))["cells"] if is_answer(c)}
        for cell in json.loads(nb_path.read_text(encoding="utf8"))["cells"]:
            if cell.get("cell_type") == "code" and is_answer(cell):
                grade_id = nbmeta(cell).get("grade_id")
                cells.append((f"{assignment}/{grade_id}", _source(cell), stubs.get(grade_id, "")))
    return cells


def solutions_copied_on_site(html_dir: Path, corpus: Path) -> list[str]:
    """The solution cells that the website's code contains, by the grader's copy rule."""
    root = str(write_site_corpus(site_code_blocks(html_dir), corpus))
    return [name for name, code, stub in solution_cells() if integrity.copied_from_cnnmath(code, stub, root=root)]


def library_copies_on_site(html_dir: Path) -> list[str]:
    """The website code blocks that the grader would flag as copies of cnnmath's source."""
    return [f"{page} block {i}" for page, blocks in site_code_blocks(html_dir).items()
            for i, block in enumerate(blocks) if integrity.copied_from_cnnmath(block)]


def test_site_has_code_and_solutions_exist(book_build):
    """The check has material on both sides: code blocks on the chapter pages, answer cells in solutions/."""
    blocks = site_code_blocks(book_build.html)
    chapter_blocks = sum(len(b) for page, b in blocks.items() if page.startswith("book/"))
    assert chapter_blocks > 100, f"only {chapter_blocks} code blocks found on the chapter pages"
    cells = solution_cells()
    assignments = {name.split("/")[0] for name, _, _ in cells}
    assert len(assignments) >= 10 and len(cells) >= 30, f"{len(cells)} answer cells in {sorted(assignments)}"
    assert all(stub for _, _, stub in cells), "an answer cell has no released stub in exercises/"


def test_no_solution_is_printed_on_the_site(book_build, tmp_path):
    """No reference answer of solutions/ is, by the grader's copy detection, a copy of the website's code."""
    copied = solutions_copied_on_site(book_build.html, tmp_path / "site")
    assert not copied, f"the website prints (near-)copies of these graded answers: {copied}"


def test_no_library_source_is_printed_on_the_site(book_build):
    """No website code block would be flagged by the grader as copied from cnnmath if pasted into an answer."""
    flagged = library_copies_on_site(book_build.html)
    assert not flagged, f"the website prints cnnmath source the grader flags as a copy: {flagged}"
