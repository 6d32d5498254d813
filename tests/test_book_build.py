"""The book builds clean with -n -W, renders no error output, and leaks nothing of solutions/.

All assertions use the session's single clean build (tests/book_build.py).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.book_build import ROOT, book_build, chapter_sources, is_notebook, log_tail, toc_files  # noqa: F401

pytestmark = pytest.mark.slow

# Markers of nbgrader solution / hidden-test regions (source notebooks only; a release strips them).
SOLUTION_MARKERS = [b"BEGIN SOLUTION", b"END SOLUTION", b"BEGIN HIDDEN TESTS", b"END HIDDEN TESTS",
                    b"### BEGIN", b"### END"]


def test_build_succeeds_without_warnings(book_build):
    """`jupyter-book build . -n -W --keep-going` exits 0: no warning, no broken reference, no cell error."""
    assert book_build.returncode == 0, (
        f"book build failed (exit {book_build.returncode}); last lines of the log:\n{log_tail(book_build)}")
    warnings = [line for line in book_build.log.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL):", line)]
    assert not warnings, "build log has warnings/errors:\n" + "\n".join(warnings[:40])


def test_every_toc_page_is_built(book_build):
    """Each page listed in _toc.yml exists as a source and is rendered to HTML."""
    missing_src = [f for f, src in chapter_sources().items() if not src.exists()]
    assert not missing_src, f"_toc.yml lists pages with no source file: {missing_src}"
    missing_html = [f for f in toc_files() if not (book_build.html / (f + ".html")).exists()]
    assert not missing_html, f"pages not rendered to HTML: {missing_html}"


def test_no_placeholder_pages(book_build):
    """No page still carries the infrastructure placeholder text."""
    left = [f for f, src in chapter_sources().items()
            if src.exists() and "PLACEHOLDER: this page is being written" in src.read_text(encoding="utf8")]
    assert not left, f"placeholder pages left in the book: {left}"


def test_no_execution_reports(book_build):
    """myst-nb writes reports/<page>.err.log for every notebook whose execution raised: there must be none."""
    reports = sorted(p.relative_to(book_build.html) for p in (book_build.html / "reports").rglob("*.err.log")) \
        if (book_build.html / "reports").exists() else []
    details = "\n".join(f"{r}:\n{(book_build.html / r).read_text()[-1500:]}" for r in reports[:3])
    assert not reports, f"notebook execution failed for {[str(r) for r in reports]}\n{details}"
    assert "Executing notebook failed" not in book_build.log
    assert "Notebook exception traceback saved" not in book_build.log


def test_no_error_output_in_any_page(book_build):
    """No built page shows a traceback, an error output or a stderr block."""
    pages = sorted(book_build.html.rglob("*.html"))
    assert pages, "no HTML pages were built"
    bad = {}
    for page in pages:
        html = page.read_text(encoding="utf8", errors="replace")
        hits = []
        if re.search(r'class="[^"]*\boutput traceback\b', html):
            hits.append("traceback output")
        if re.search(r'class="[^"]*\boutput stderr\b', html):
            hits.append("stderr output")
        for needle in ("Traceback (most recent call last)", "Error: Kernel", "CellExecutionError",
                       "jupyter-execute-error"):
            if needle in html:
                hits.append(needle)
        if hits:
            bad[str(page.relative_to(book_build.html))] = hits
    assert not bad, f"error output rendered in pages: {bad}"


def _solution_files() -> list[Path]:
    root = ROOT / "solutions"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_nothing_of_solutions_reaches_build(book_build):
    """No nbgrader solution/hidden-test marker, no copy of a solutions/ file, no solutions/ path in _build."""
    built = [p for p in book_build.build_dir.rglob("*") if p.is_file()]
    assert built, "empty build directory"
    solution_hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in _solution_files()
                       if p.stat().st_size > 0}
    leaks = []
    for p in built:
        rel = p.relative_to(book_build.build_dir)
        data = p.read_bytes()
        for marker in SOLUTION_MARKERS:
            if marker in data:
                leaks.append(f"{rel} contains {marker.decode()!r}")
        if "solutions" in rel.parts:
            leaks.append(f"{rel} is under a 'solutions' folder")
        h = hashlib.sha256(data).hexdigest()
        if h in solution_hashes:
            leaks.append(f"{rel} is a copy of {solution_hashes[h].relative_to(ROOT)}")
    assert not leaks, "solutions leaked into the build:\n" + "\n".join(leaks[:40])


def test_mathjax_is_local_and_loaded_once(book_build):
    """Every page with math loads MathJax exactly once, from the site itself (no CDN), and its fonts ship."""
    static = book_build.html / "_static" / "mathjax"
    assert (static / "tex-mml-chtml.js").is_file()
    fonts = list((static / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) > 10, f"MathJax woff-v2 fonts missing in {static}"
    math_pages = 0
    for page in sorted((book_build.html / "book").rglob("*.html")):
        html = page.read_text(encoding="utf8")
        scripts = re.findall(r'<script[^>]*src="([^"]*(?:mathjax|MathJax)[^"]*)"', html)
        assert all(not s.startswith(("http:", "https:", "//")) for s in scripts), f"{page.name}: remote MathJax {scripts}"
        if 'class="math' in html:
            math_pages += 1
            assert len(scripts) == 1 and "_static/mathjax/tex-mml-chtml.js" in scripts[0], \
                f"{page.name}: expected one local MathJax script, got {scripts}"
    assert math_pages >= 4, f"only {math_pages} pages contain math"


def test_every_exercise_notebook_is_downloadable(book_build):
    """Each released student notebook exercises/<a>/<a>.ipynb is offered, byte for byte, in _downloads/."""
    released = sorted((ROOT / "exercises").glob("*/*.ipynb"))
    assert released, "no released exercises/<a>/<a>.ipynb: run `make release`"
    downloads = {hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in (book_build.html / "_downloads").rglob("*.ipynb")} \
        if (book_build.html / "_downloads").exists() else set()
    missing = [str(p.relative_to(ROOT)) for p in released
               if hashlib.sha256(p.read_bytes()).hexdigest() not in downloads]
    assert not missing, f"student notebooks not offered (or stale) on the exercises page: {missing}"


def test_kernels_run_encrypted_without_tcp_warnings(book_build):
    """Every chapter is executed by a kernel over CurveZMQ (book/_ext/kernel_encryption.py): the build log has
    one "Executed notebook" line per notebook page and not one "running over TCP without encryption" warning."""
    notebooks = [f for f, src in chapter_sources().items() if src.exists() and is_notebook(src)]
    executed = re.findall(r"Executed notebook in [0-9.]+ seconds", book_build.log)
    assert len(notebooks) >= 16 and len(executed) == len(notebooks), (
        f"{len(executed)} notebooks executed for {len(notebooks)} notebook pages")
    warnings = [line for line in book_build.log.splitlines() if "without encryption" in line or
                "Kernel is running over TCP" in line]
    assert not warnings, f"{len(warnings)} kernel transport warnings in the build log, e.g. {warnings[0]}"
