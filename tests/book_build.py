"""One clean build of the book per test session, shared by every book test.

The build is exactly what `make book` runs (`jupyter-book build . -n -W --keep-going`), but written to a
fresh temporary directory (``--path-output``), so it never reuses an execution cache or a Sphinx
environment and never touches the developer's ``_build/``.  Every chapter is therefore executed from
scratch (``execute_notebooks: force``); myst-nb writes each executed notebook to
``<out>/_build/jupyter_execute/book/<chapter>.ipynb``, which test_chapters_execute.py inspects.

Import the fixture into a test module with ``from tests.book_build import book_build  # noqa: F401``.
With several modules (or pytest-xdist workers) the build runs once: the result is recorded in a JSON file
under the session's base temporary directory, guarded by a file lock.
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


@dataclasses.dataclass(frozen=True)
class BookBuild:
    """Where one clean build went and how it ended."""

    out: Path          # the --path-output directory
    returncode: int    # jupyter-book's exit status (non-zero on any warning because of -W)
    seconds: float     # wall-clock build time
    log: str           # stdout + stderr of the build

    @property
    def build_dir(self) -> Path:
        return self.out / "_build"

    @property
    def html(self) -> Path:
        return self.build_dir / "html"

    @property
    def executed(self) -> Path:
        return self.build_dir / "jupyter_execute"


def toc_files() -> list[str]:
    """Every page of _toc.yml in order, as paths without suffix (e.g. 'book/03-conv1d')."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def chapter_sources() -> dict[str, Path]:
    """The source file of every TOC page ('book/03-conv1d' -> book/03-conv1d.md)."""
    sources = {}
    for f in toc_files():
        matches = [ROOT / (f + ext) for ext in (".md", ".ipynb") if (ROOT / (f + ext)).exists()]
        sources[f] = matches[0] if matches else ROOT / (f + ".md")
    return sources


def is_notebook(source: Path) -> bool:
    """True for a jupytext MyST notebook (a page myst-nb executes)."""
    head = source.read_text(encoding="utf8")[:2000]
    return head.startswith("---") and "jupytext:" in head and "kernelspec:" in head


def run_build(out: Path) -> BookBuild:
    """Build the whole book clean into ``out`` and return the outcome (never raises on failure)."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{JUPYTER_BOOK.parent}{os.pathsep}{env.get('PATH', '')}"
    # A non-inline MPLBACKEND (e.g. "agg", common on headless machines) would reach the kernels and
    # silently drop every figure from the book; the kernels must use matplotlib's inline backend.
    env.pop("MPLBACKEND", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out), "-n", "-W", "--keep-going"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seconds = time.perf_counter() - start
    (out / "build.log").write_text(proc.stdout)
    (out / "build.json").write_text(json.dumps({"returncode": proc.returncode, "seconds": seconds}))
    return BookBuild(out=out, returncode=proc.returncode, seconds=seconds, log=proc.stdout)


def load_build(out: Path) -> BookBuild:
    """A build made earlier by :func:`run_build` into ``out`` (its log and exit status are stored there)."""
    meta = json.loads((out / "build.json").read_text())
    return BookBuild(out=out, returncode=meta["returncode"], seconds=meta["seconds"],
                     log=(out / "build.log").read_text())


@pytest.fixture(scope="session")
def book_build(tmp_path_factory) -> BookBuild:
    """The session's single clean build of the book (built on first use).

    Developers iterating on the tests may set BOOK_TEST_BUILD_DIR to a directory that an earlier
    session's build left (it holds build.json, build.log and _build/); it is then reused as is.
    """
    reuse = os.environ.get("BOOK_TEST_BUILD_DIR")
    if reuse:
        return load_build(Path(reuse))
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by all workers of this session
    record = base / "book-build.json"
    with open(base / "book-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if record.exists():
                data = json.loads(record.read_text())
                return BookBuild(out=Path(data["out"]), returncode=data["returncode"],
                                 seconds=data["seconds"], log=data["log"])
            result = run_build(base / "book")
            record.write_text(json.dumps({**dataclasses.asdict(result), "out": str(result.out)}))
            print(f"\nclean book build: {result.seconds:.1f} s, exit status {result.returncode}")
            return result
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def log_tail(build: BookBuild, lines: int = 60) -> str:
    return "\n".join(build.log.splitlines()[-lines:])
