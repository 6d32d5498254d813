"""Reading submissions defensively and rebuilding the notebook to grade from the source.

The graded notebook is the instructor's SOURCE notebook with the student's answers put in:
test cells, locked instructor cells and all nbgrader metadata (points, grade ids) come from
the source, never from the submission, so deleted, edited, renamed, duplicated or re-typed
grade cells are restored and altered points are ignored (each is reported as a flag).
"""
import ast
import codecs
import copy
import json
import re

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


class BrokenNotebook(Exception):
    """A submission that cannot be read as a notebook (the message is shown to the student)."""


def _text(src):
    if isinstance(src, list):
        return "".join(s if isinstance(s, str) else "" for s in src)
    return src if isinstance(src, str) else ""


cell_text = _text  # public name: a cell's source as one string


def nbmeta(cell):
    md = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = md.get("nbgrader") if isinstance(md, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def is_test(cell):
    m = nbmeta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def is_answer(cell):
    return bool(nbmeta(cell).get("solution"))


def decode_bytes(data):
    """Decode a notebook file's bytes (UTF-8, with or without BOM, UTF-16/32 with BOM)."""
    if not data.strip():
        raise BrokenNotebook("the notebook file is empty")
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc)
            except UnicodeDecodeError as exc:
                raise BrokenNotebook(f"the notebook file is not valid {enc}: {exc}") from None
    if len(data) >= 4 and data[0] and not data[1] and data[2] and not data[3]:
        enc = "utf-16-le"   # UTF-16 without a byte-order mark (ASCII characters then NUL bytes)
    elif len(data) >= 4 and not data[0] and data[1] and not data[2] and data[3]:
        enc = "utf-16-be"
    else:
        enc = None
    if enc:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise BrokenNotebook("the notebook file is not UTF-8 text") from None
    return text


MAX_BYTES = 64 << 20  # a submission is read up to this size


def read_submission(path):
    """Return (notebook dict in nbformat 4, notes) or raise BrokenNotebook with a clear message."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES)
    except OSError as exc:
        raise BrokenNotebook(f"cannot read the notebook file: {exc.strerror}") from None
    return parse_submission(data)


def parse_submission(data):
    """(notebook dict in nbformat 4, notes) from a submitted file's bytes, or raise BrokenNotebook."""
    notes = []
    text = decode_bytes(data)
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BrokenNotebook(f"the notebook file is not valid JSON ({exc.msg}: line {exc.lineno}, "
                             f"column {exc.colno}); was it saved completely?") from None
    except RecursionError:
        raise BrokenNotebook("the notebook file is not a valid notebook (nested too deeply)") from None
    if not isinstance(nb, dict):
        raise BrokenNotebook("the notebook file is JSON but not a notebook (no top-level object)")
    major = nb.get("nbformat")
    if major == 3 or (major is None and "worksheets" in nb):
        try:
            import nbformat
            nb = json.loads(nbformat.writes(nbformat.reads(json.dumps(nb), as_version=4)))
            notes.append("the notebook was in the old nbformat 3 and was converted to nbformat 4")
        except Exception as exc:
            raise BrokenNotebook(f"the notebook is in nbformat 3 and could not be converted: {exc}") from None
    elif major != 4:
        raise BrokenNotebook(f"unsupported notebook format nbformat={major!r} (expected 4); "
                             "save it with a current Jupyter")
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise BrokenNotebook("the notebook has no list of cells")
    good = []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            notes.append(f"cell {i + 1} is not a valid notebook cell and was ignored")
            continue
        cell = dict(cell)
        # lone surrogates (a broken encoder) can't be compiled or written: make them visible instead
        cell["source"] = _text(cell.get("source")).encode("utf-8", "replace").decode("utf-8")
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        good.append(cell)
    nb["cells"] = good
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    ks = meta.get("kernelspec") if isinstance(meta.get("kernelspec"), dict) else {}
    kname = ks.get("name")
    lang = ks.get("language") or (meta.get("language_info") or {}).get("name") if isinstance(
        meta.get("language_info"), dict) else ks.get("language")
    if kname is not None and not str(kname).startswith("python") or lang not in (None, "python"):
        notes.append(f"the notebook names kernel {kname!r} (language {lang!r}); it was graded with Python 3")
    return nb, notes


def defined_names(code):
    """Top-level names a code cell binds (functions, classes, assignments)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: NUL bytes, surrogates
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
    return names


def used_names(code):
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: NUL bytes, surrogates
        return set(re.findall(r"[A-Za-z_]\w*", code))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def hidden_line_ranges(code):
    """1-based (first, last) line ranges of hidden-test blocks in a test cell."""
    ranges, start = [], None
    for i, line in enumerate(code.splitlines(), 1):
        if HIDDEN_BEGIN in line and start is None:
            start = i
        elif HIDDEN_END in line and start is not None:
            ranges.append((start, i))
            start = None
    if start is not None:
        ranges.append((start, len(code.splitlines()) + 1))
    return ranges


def strip_hidden(code):
    """A test cell's source without its hidden-test blocks."""
    out, inside = [], False
    for line in code.splitlines(keepends=True):
        if HIDDEN_BEGIN in line:
            inside = True
            continue
        if HIDDEN_END in line:
            inside = False
            continue
        if not inside:
            out.append(line)
    return "".join(out)


def _code_cell(source, metadata, cell_id=None):
    cell = {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": source}
    if cell_id:
        cell["id"] = cell_id
    return cell


def assemble(source_nb, release_nb, student_nb):
    """Merge a submission into the source skeleton.

    Returns (cells, flags): each cell is a dict with keys ``role`` ("markdown", "instructor",
    "answer", "test", "student"), ``cell`` (the nbformat cell to put in the graded notebook)
    and, for answers, ``grade_id``. Flags are (kind, detail) pairs about tampering.
    """
    flags = []
    release_by_id = {nbmeta(c).get("grade_id"): c for c in release_nb["cells"] if nbmeta(c).get("grade_id")}
    source_cells = source_nb["cells"]
    source_ids = {}
    for c in source_cells:
        gid = nbmeta(c).get("grade_id")
        if gid:
            source_ids[gid] = c
    source_cell_ids = {c.get("id") for c in source_cells if c.get("id")}
    # Student cells, classified.
    answers = {}          # grade_id -> student cell (first occurrence)
    free_after = {}       # anchor source index -> [student cells]
    free_ids = {}         # source cell id of an unlocked plain cell -> student cell
    anchor = -1
    index_of_gid = {nbmeta(c).get("grade_id"): i for i, c in enumerate(source_cells) if nbmeta(c).get("grade_id")}
    index_of_cid = {c.get("id"): i for i, c in enumerate(source_cells) if c.get("id")}
    seen_tests = set()
    for cell in student_nb["cells"]:
        m = nbmeta(cell)
        gid = m.get("grade_id") if isinstance(m.get("grade_id"), str) else None
        src = source_ids.get(gid) if gid else None
        cid = cell.get("id")
        if src is None and cid in index_of_cid and nbmeta(source_cells[index_of_cid[cid]]).get("grade_id") \
                and not (m.get("grade") or m.get("solution") or m.get("locked")):
            # same cell id as an nbgrader cell of the source, but its metadata is gone or broken
            src = source_cells[index_of_cid[cid]]
            gid = nbmeta(src)["grade_id"]
            if is_answer(src) and cell.get("cell_type") == src.get("cell_type") and gid not in answers:
                flags.append(("tampering", f"nbgrader metadata of answer cell '{gid}' was missing or broken "
                                           "(restored from the source)"))
                answers[gid] = cell
                anchor = index_of_gid[gid]
                continue
            if not is_answer(src):
                m = dict(nbmeta(src), _broken=True)
        if src is not None and is_answer(src):
            if cell.get("cell_type") != src.get("cell_type"):
                flags.append(("tampering", f"answer cell '{gid}' changed type to {cell.get('cell_type')}"))
                continue
            if gid in answers:
                flags.append(("tampering", f"answer cell '{gid}' appears twice; the first one was graded"))
                continue
            if not is_answer(cell) or m.get("grade") != nbmeta(src).get("grade") or \
                    m.get("points") != nbmeta(src).get("points"):
                flags.append(("tampering", f"nbgrader metadata of answer cell '{gid}' was altered "
                                           "(restored from the source)"))
            answers[gid] = cell
            anchor = index_of_gid[gid]
            continue
        if src is not None:
            # a test or locked instructor cell: the source version is used
            rel = release_by_id.get(gid)
            expected = _text(rel["source"]) if rel is not None else strip_hidden(_text(src["source"]))
            if gid in seen_tests:
                flags.append(("tampering", f"cell '{gid}' is duplicated; the copy was ignored"))
            elif m.get("_broken"):
                flags.append(("tampering", f"nbgrader metadata of cell '{gid}' was missing or broken "
                                           "(restored from the source)"))
            elif cell.get("cell_type") != src.get("cell_type") or m.get("points") != nbmeta(src).get("points") \
                    or bool(m.get("grade")) != bool(nbmeta(src).get("grade")) or bool(m.get("solution")):
                flags.append(("tampering", f"nbgrader metadata of cell '{gid}' was altered (restored from the source)"))
            elif cell["source"].strip() != expected.strip():
                flags.append(("tampering", f"locked cell '{gid}' was edited (restored from the source)"))
            seen_tests.add(gid)
            anchor = index_of_gid[gid]
            continue
        if m.get("grade") or m.get("locked") or m.get("solution") or gid:
            if cell.get("cell_type") == "code" and (m.get("grade") or m.get("locked")) and not m.get("solution"):
                flags.append(("tampering", f"an extra graded or locked cell ({gid or 'no grade_id'}) "
                                           "that is not in the source was removed"))
                continue
            if m.get("solution"):
                flags.append(("tampering", f"an answer cell with unknown grade_id {gid!r} was graded "
                                           "as an ordinary cell"))
        if cid in index_of_cid and not nbmeta(source_cells[index_of_cid[cid]]) and cid not in free_ids:
            free_ids[cid] = cell
            anchor = index_of_cid[cid]
            continue
        if cell.get("cell_type") == "code":
            free_after.setdefault(anchor, []).append(cell)
    for gid, c in source_ids.items():
        if is_test(c) and gid not in seen_tests:
            flags.append(("tampering", f"test cell '{gid}' was missing (restored from the source)"))

    out = []

    def add_free(idx):
        for cell in free_after.get(idx, []):
            out.append({"role": "student", "cell": _code_cell(cell["source"], {}, None)})

    add_free(-1)
    for i, src in enumerate(source_cells):
        m = nbmeta(src)
        gid = m.get("grade_id")
        if src.get("cell_type") != "code":
            cell = copy.deepcopy(release_by_id.get(gid, src)) if gid else copy.deepcopy(src)
            cell["source"] = _text(cell.get("source"))
            out.append({"role": "markdown", "cell": cell})
        elif is_answer(src):
            rel = release_by_id.get(gid, src)
            meta = copy.deepcopy(rel.get("metadata", {}))
            if gid in answers:
                code = answers[gid]["source"]
            else:
                # nothing is run in its place, so a function the student defined in another cell survives
                code = ""
                flags.append(("tampering", f"answer cell '{gid}' was missing (left empty)"))
            out.append({"role": "answer", "grade_id": gid, "cell": _code_cell(code, meta, src.get("id"))})
        elif is_test(src):
            out.append({"role": "test", "grade_id": gid,
                        "cell": _code_cell(_text(src["source"]), copy.deepcopy(src.get("metadata", {})),
                                           src.get("id"))})
        elif m.get("locked") or m.get("grade"):
            out.append({"role": "instructor",
                        "cell": _code_cell(_text(src["source"]), copy.deepcopy(src.get("metadata", {})),
                                           src.get("id"))})
        else:
            # an ordinary (unlocked) cell: the student's version if they kept it
            cid = src.get("id")
            if cid in free_ids:
                out.append({"role": "student", "cell": _code_cell(free_ids[cid]["source"], {}, cid)})
        add_free(i)
    # deduplicate ids
    seen = set()
    for entry in out:
        cid = entry["cell"].get("id")
        if cid in seen or cid is None:
            entry["cell"]["id"] = f"cg-{len(seen)}"
        seen.add(entry["cell"]["id"])
    return out, flags


def solution_names(source_nb):
    """Names the instructor's solution cells define: these reach the tests as proxies."""
    names = set()
    for c in source_nb["cells"]:
        if is_answer(c) and c.get("cell_type") == "code":
            names |= defined_names(_text(c["source"]))
    return names
