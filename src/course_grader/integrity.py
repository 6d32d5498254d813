"""Detecting answers that call or copy the reference library ``cnnmath``."""
import functools
import importlib.util
import io
import os
import tokenize

SHINGLE = 16          # tokens per shingle
MIN_MATCHES = 12      # shingles shared with cnnmath before an answer counts as copied
MIN_FRACTION = 0.4    # ... and the fraction of the answer's shingles they make up
from .fingerprints import FORMULA_MODULES, STRUCTURE_CONTAINMENT, structure_containment  # noqa: F401


def _tokens(code):
    toks = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER, tokenize.STRING):
                toks.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return toks


def _shingles(code):
    toks = _tokens(code)
    return {tuple(toks[i:i + SHINGLE]) for i in range(max(len(toks) - SHINGLE + 1, 0))}


def _library_union(shingler, root=None):
    """Union of ``shingler(source)`` over every .py file of cnnmath (the installed package, or ``root``)."""
    if root is None:
        spec = importlib.util.find_spec("cnnmath")
        if spec is None or not spec.submodule_search_locations:
            return frozenset()
        root = list(spec.submodule_search_locations)[0]
    out = set()
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in FORMULA_MODULES]
        for name in files:
            if name.endswith(".py") and name not in FORMULA_MODULES:
                with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                    out |= shingler(f.read())
    return frozenset(out)


@functools.lru_cache(maxsize=None)
def library_shingles(root=None):
    """Shingles of every .py file of cnnmath (the installed package, or ``root``)."""
    return _library_union(_shingles, root)


def mentions_cnnmath(code, allowed=""):
    """True if the code names cnnmath outside comments (strings the stub itself had are allowed)."""
    allowed_strings = set(_string_tokens(allowed))
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME and tok.string == "cnnmath":
                return True
            if tok.type == tokenize.STRING and "cnnmath" in tok.string and tok.string not in allowed_strings:
                return True
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return "cnnmath" in code.replace(allowed, "")
    return False


def _string_tokens(code):
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(code).readline)
                if t.type == tokenize.STRING]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []


def source_copies_cnnmath(code, stub="", library=None):
    """True if source code names cnnmath, or copies it (verbatim, renamed, or its statements reordered)."""
    return bool(mentions_cnnmath(code, stub) or copied_from_cnnmath(code, stub, library) or
                structure_containment(code, stub)[0] >= STRUCTURE_CONTAINMENT)


def copied_from_cnnmath(code, stub="", library=None, root=None):
    """True if a substantial part of the code is a copy of cnnmath's source.

    Token for token, or with every identifier renamed (longer shingles of the code with local
    names replaced by one placeholder: the reference solutions share almost none with cnnmath).
    ``library``: the pair (library_shingles(), library_normalized_shingles()) to compare with, e.g.
    computed on another machine; default: those of the installed cnnmath. With ``root``, the .py
    files under that directory take the place of cnnmath (the book test uses it to ask whether a
    reference solution is a copy of code printed on the website).
    """
    if library is None:
        library = (library_shingles(root), library_normalized_shingles(root))
    for shingler, lib in zip((_shingles, _normalized_shingles), library):
        mine = shingler(code) - shingler(stub)
        if mine and lib:
            shared = len(mine & lib)
            if shared >= MIN_MATCHES and shared >= MIN_FRACTION * len(mine):
                return True
    return False


NORMALIZED_SHINGLE = 24   # tokens per shingle once identifiers are renamed away


def _normalized_tokens(code):
    """Tokens with local identifiers, and strings, replaced by placeholders (attribute names kept)."""
    import builtins
    import keyword
    out, prev = [], None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.NAME:
                s = tok.string
                if not keyword.iskeyword(s) and not hasattr(builtins, s) and prev != ".":
                    s = "ID"
                out.append(s)
            elif tok.type in (tokenize.OP, tokenize.NUMBER):
                out.append(tok.string)
            elif tok.type == tokenize.STRING:
                out.append("STR")
            if tok.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER, tokenize.STRING):
                prev = tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def _normalized_shingles(code):
    toks = _normalized_tokens(code)
    k = NORMALIZED_SHINGLE
    return {tuple(toks[i:i + k]) for i in range(max(len(toks) - k + 1, 0))}


@functools.lru_cache(maxsize=None)
def library_normalized_shingles(root=None):
    """Identifier-normalized shingles of every .py file of cnnmath."""
    return _library_union(_normalized_shingles, root)


# -- which answers, which tests ------------------------------------------------------------------------
def _where(cell):
    return f"answer '{cell['grade_id']}'" if cell["role"] == "answer" else "a cell you added"


def bound_names(code):
    """Every module-level name a cell binds: definitions, assignments and ``from ... import`` names
    anywhere outside function and class bodies (inside try/if/for/with too), and names functions
    declare global (not modules: ``import numpy as np`` binds a module every test uses too)."""
    import ast
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return set()
    names, stack = set(), list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.Import):
            continue   # a module (numpy as np) is not the cell's code: tests use it too
        elif isinstance(node, ast.alias) and node.name != "*":
            names.add(node.asname or node.name)
        elif isinstance(node, ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(node))
    names |= {n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}
    return names


def judge_cells(cells, import_hits, copy_hits, matches=None, library=None, owners=None):
    """The cnnmath flags of a graded notebook and the tests they cost.

    ``cells``: [{"role", "grade_id", "source", "stub"}] in notebook order (roles of notebook.assemble);
    ``import_hits`` / ``copy_hits``: where the sandbox saw an import of cnnmath / cnnmath's code run,
    as ("cell", index) or ("call", function name); ``matches``: where -> the cnnmath function matched;
    ``owners``: function name -> grade_id of the answer that must define it. Returns (flags, grade ids
    of the tests that earn 0). A flag always costs something: the tests that use what it names (through
    any chain of cells), else every test that checks a student function.
    """
    from .notebook import used_names
    matches, owners = matches or {}, owners or {}
    call_imports = {n for k, n in import_hits if k == "call"}
    call_copies = {n for k, n in copy_hits if k == "call"}
    flags, groups, defined, flagged = [], [], set(), set()
    for index, cell in enumerate(cells):
        if cell["role"] not in ("answer", "student"):
            continue
        code, stub = cell["source"], cell["stub"]
        mine = bound_names(code)
        defined |= mine
        what = None
        if mentions_cnnmath(code, stub):
            what = "uses the reference library cnnmath"
        elif copied_from_cnnmath(code, stub, library):
            what = "copies code from the reference library cnnmath"
        elif structure_containment(code, stub)[0] >= STRUCTURE_CONTAINMENT:
            what = ("copies code from the reference library cnnmath (renamed or reordered: the statements of "
                    f"cnnmath's {structure_containment(code, stub)[1]})")
        elif ("cell", index) in import_hits or mine & call_imports:
            what = "tries to import the reference library cnnmath"
        elif ("cell", index) in copy_hits or mine & call_copies:
            found = [matches[w] for w in [("cell", index)] + [("call", n) for n in sorted(mine)] if w in matches]
            what = ("runs code copied from the reference library cnnmath" +
                    (f" (the bytecode of cnnmath's {found[0]})" if found else " (built at run time)"))
        if what:
            flags.append(["cnnmath", f"{_where(cell)} {what}"])
            groups.append(set(mine))
            if cell["role"] == "answer":
                flagged.add(cell["grade_id"])
    for name in sorted((call_imports | call_copies) - defined):   # functions no cell defines by name
        groups.append({name})
        if owners.get(name) in flagged:
            continue   # its answer is flagged already (it builds the function at run time)
        owner = f"answer '{owners[name]}'" if name in owners else "your code"
        what = ("tries to import the reference library cnnmath" if name in call_imports else
                "runs code copied from the reference library cnnmath" +
                (f" (the bytecode of cnnmath's {matches[('call', name)]})" if ("call", name) in matches else ""))
        flags.append(["cnnmath", f"{owner}: your function {name} {what}"])
    for group in groups:   # every flagged function is bad wherever it is called from
        group |= call_imports | call_copies
    tests = [(c["grade_id"], used_names(c["source"])) for c in cells if c["role"] == "test"]
    carriers = [(used_names(c["source"]), bound_names(c["source"])) for c in cells
                if c["role"] in ("answer", "student", "instructor")]
    checks_student = {gid for gid, used in tests if used & (set(owners) | defined)} or {gid for gid, _ in tests}
    lost = set()
    for group in groups:
        bad, grew = set(group), True
        while grew:   # answers, added cells and instructor cells that use a bad name are bad (any order)
            grew = False
            for used, binds in carriers:
                if used & bad and not binds <= bad:
                    bad |= binds
                    grew = True
        hit = {gid for gid, used in tests if used & bad}
        lost |= hit or checks_student
    return flags, sorted(lost)
