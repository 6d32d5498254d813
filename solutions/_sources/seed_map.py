"""Generate the "Graded notebook" column of ``book/seed-map.md`` from the assignments themselves.

A graded test cell says which seed-map rows it grades with a line of its docstring::

    Seed map: 003 IV: total 2,842; 001 4: VGG

each item being ``<seed> <section>: <phrase>``: the row of seed ``<seed>``'s table whose Section
cell is ``<section>`` and whose "Formula, example or claim" cell contains ``<phrase>``. The column
of every row is then rewritten to list the notebooks and graded parts (``grade_id``) that claim
it, in teaching order, so a coverage claim always names a graded part that exists; a row no part
claims gets an empty cell. An item that matches no row, or more than one, is an error.

The tags are read from the built solution notebooks ``solutions/<a>/<a>.ipynb`` (the nbgrader
metadata: ``grade_id`` and the test cell's docstring).

Usage::

    python solutions/_sources/seed_map.py           # rewrite the column of book/seed-map.md
    python solutions/_sources/seed_map.py --check   # fail (exit 1) if the column is not what is graded
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

SOURCES = Path(__file__).resolve().parent
ROOT = SOURCES.parents[1]
SEED_MAP = ROOT / "book" / "seed-map.md"

TAG = re.compile(r"^\s*Seed map:\s*(?P<items>.+?)\s*$", re.M)
ITEM = re.compile(r"^(?P<seed>\d{3}) (?P<section>[^:]+?): (?P<phrase>.+)$")
HEADING = re.compile(r"^## Seed (?P<seed>\d{3})\b")


class SeedMapError(ValueError):
    """A tag that matches no row (or several), or a malformed tag or table."""


def _assignments() -> list[str]:
    spec = importlib.util.spec_from_file_location("exercise_build", SOURCES / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.available()


def _docstring(source: str) -> str:
    text = source.lstrip()
    return text[3:].split('"""', 1)[0] if text.startswith('"""') else ""


def graded_parts(notebooks: dict[str, dict]) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """``(assignment, grade_id, [(seed, section, phrase), ...])`` for every graded test cell."""
    parts = []
    for name, nb in notebooks.items():
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade") or meta.get("solution"):
                continue
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            items = []
            for tag in TAG.finditer(_docstring(source)):
                for raw in tag["items"].split(";"):
                    m = ITEM.match(raw.strip())
                    if not m:
                        raise SeedMapError(f"{name}:{meta['grade_id']}: malformed seed-map item {raw.strip()!r} "
                                           "(expected '<seed> <section>: <phrase>')")
                    items.append((m["seed"], m["section"].strip(), m["phrase"].strip()))
            parts.append((name, meta["grade_id"], items))
    return parts


def _row_cells(line: str) -> tuple[str, str, str] | None:
    """(section, claim, prefix up to the last column) of a table body row, else None."""
    body = line.rstrip()
    if not body.startswith("|") or not body.endswith("|") or set(body) <= set("|-: "):
        return None
    cells = body[1:-1].split("|")
    if len(cells) < 4:
        return None
    section, claim = cells[0].strip(), "|".join(cells[1:-2]).strip()
    if section == "Section":
        return None
    inner = body[:-1]
    return section, claim, inner[:inner.rfind("|") + 1]


def generate(text: str, parts) -> str:
    """``text`` (the seed map) with every row's last column computed from ``parts``."""
    lines = text.splitlines()
    rows = []  # (line index, seed, section, claim, prefix)
    seed = None
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if m:
            seed = m["seed"]
            continue
        cells = _row_cells(line)
        if cells and seed is not None:
            rows.append((i, seed, *cells))
    claims: dict[int, dict[str, list[str]]] = {}
    for name, grade_id, items in parts:
        for item_seed, section, phrase in items:
            hits = [r for r in rows if r[1] == item_seed and r[2] == section and phrase in r[3]]
            if len(hits) != 1:
                what = "no row" if not hits else f"{len(hits)} rows"
                raise SeedMapError(f"{name}:{grade_id}: seed-map item '{item_seed} {section}: {phrase}' matches "
                                   f"{what} of book/seed-map.md")
            claims.setdefault(hits[0][0], {}).setdefault(name, []).append(grade_id)
    order = list(dict.fromkeys(name for name, _, _ in parts))
    for i, _seed, _section, _claim, prefix in rows:
        by_notebook = claims.get(i, {})
        cell = "; ".join(f"`{nb}`: " + ", ".join(f"`{g}`" for g in dict.fromkeys(by_notebook[nb]))
                         for nb in order if nb in by_notebook)
        lines[i] = prefix + (f" {cell} |" if cell else " |")
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def main(argv: list[str]) -> int:
    notebooks = {a: json.loads((ROOT / "solutions" / a / f"{a}.ipynb").read_text(encoding="utf-8"))
                 for a in _assignments()}
    text = SEED_MAP.read_text(encoding="utf-8")
    try:
        new = generate(text, graded_parts(notebooks))
    except SeedMapError as exc:
        print(f"seed map: {exc}", file=sys.stderr)
        return 2
    if "--check" in argv:
        if new != text:
            stale = [f"  {a}\n  -> {b}" for a, b in zip(text.splitlines(), new.splitlines()) if a != b]
            print("book/seed-map.md's graded-notebook column differs from the graded parts "
                  "(run python solutions/_sources/seed_map.py):\n" + "\n".join(stale[:20]), file=sys.stderr)
            return 1
        return 0
    SEED_MAP.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
