"""Detecting answers that call or copy the reference library ``cnnmath``."""
import ast
import functools
import importlib.util
import io
import os
import tokenize

SHINGLE = 16          # tokens per shingle
MIN_MATCHES = 12      # shingles shared with cnnmath before an answer counts as copied
MIN_FRACTION = 0.4    # ... and the fraction of the answer's shingles they make up
# cnnmath's SymPy formulas: the answers of the derivations notebook are these formulas, which can
# only be derived, not copied (a right answer may match them token for token)
FORMULA_MODULES = frozenset({"symbolic.py", "symbolic"})   # the module, or the package folder


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


# -- what executes: bytecode fingerprints (the sandbox's report, course_grader._child_code) ----------------
MIN_FUNCTION_SHINGLES = 24   # cnnmath functions smaller than this are too generic to recognise
CODE_CONTAINMENT = 0.6       # the fraction of a cnnmath function's bytecode shingles found in what ran


def _function_codes(module_code):
    """(qualified name, code) of every function defined in a compiled module, nested ones included."""
    out, stack = [], [("", module_code)]
    while stack:
        prefix, code = stack.pop()
        for const in code.co_consts:
            if isinstance(const, type(module_code)):
                name = f"{prefix}{const.co_name}"
                if not const.co_name.startswith("<"):
                    out.append((name, const))
                stack.append((name + ".", const))
    return out


def _nested_shingles(code):
    from ._child_code import code_shingles
    out, stack = set(), [code]
    while stack:
        c = stack.pop()
        out |= code_shingles(c)
        stack.extend(k for k in c.co_consts if isinstance(k, type(c)))
    return out


@functools.lru_cache(maxsize=None)
def library_code_fingerprints(root=None):
    """((module:function, frozenset of shingles), ...) of cnnmath's functions, compiled under this Python.

    The functions with at least MIN_FUNCTION_SHINGLES shingles, the SymPy formula modules excepted (as
    for the source checks). Computed once per process (and per ``root``).
    """
    if root is None:
        spec = importlib.util.find_spec("cnnmath")
        if spec is None or not spec.submodule_search_locations:
            return ()
        root = list(spec.submodule_search_locations)[0]
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in FORMULA_MODULES)
        for name in sorted(files):
            if not name.endswith(".py") or name in FORMULA_MODULES:
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                try:
                    module = compile(f.read(), path, "exec", dont_inherit=True)
                except SyntaxError:
                    continue
            rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
            for qual, code in _function_codes(module):
                shingles = frozenset(_nested_shingles(code))
                if len(shingles) >= MIN_FUNCTION_SHINGLES:
                    out.append((f"{rel}:{qual}", shingles))
    return tuple(out)


def _ran(report):
    shingles = report.get("shingles") if isinstance(report, dict) else None
    if not isinstance(shingles, list):
        return set()
    return {s for s in shingles[:100000] if isinstance(s, int) and not isinstance(s, bool)}


def executed_containment(report, fingerprints=None):
    """(highest containment, cnnmath function) of the sandbox's report of what ran (see _child_code).

    ``report``: {"codes": int, "shingles": [int, ...]} as the child sent it (untrusted plain data:
    anything else counts as nothing ran).
    """
    if fingerprints is None:
        fingerprints = library_code_fingerprints()
    ran = _ran(report)
    if not ran:
        return 0.0, None
    best, which = 0.0, None
    for name, lib in fingerprints:
        c = len(lib & ran) / len(lib)
        if c > best:
            best, which = c, name
    return best, which


def runs_cnnmath_code(report, fingerprints=None):
    """The largest cnnmath function of which CODE_CONTAINMENT or more of the bytecode ran, or None."""
    if fingerprints is None:
        fingerprints = library_code_fingerprints()
    best, _ = executed_containment(report, fingerprints)
    if best < CODE_CONTAINMENT:
        return None
    ran = _ran(report)
    found = [(not any(part.startswith("_") for part in name.replace(":", ".").split(".")), len(lib), name)
             for name, lib in fingerprints if len(lib & ran) >= CODE_CONTAINMENT * len(lib)]
    return max(found)[2]   # the largest public function, to name in the flag


# -- which answers, which tests ------------------------------------------------------------------------
def _where(cell):
    return f"answer '{cell['grade_id']}'" if cell["role"] == "answer" else "a cell you added"


def judge_cells(cells, import_hits, copy_hits, matches=None, library=None, owners=None):
    """The cnnmath flags of a graded notebook and the tests they cost.

    ``cells``: [{"role", "grade_id", "source", "stub"}] in notebook order (roles of notebook.assemble);
    ``import_hits`` / ``copy_hits``: where the sandbox saw an import of cnnmath / cnnmath's code run,
    as ("cell", index) or ("call", function name); ``matches``: where -> the cnnmath function matched;
    ``owners``: function name -> grade_id of the answer that must define it. Returns (flags, grade ids
    of the tests that earn 0). A flag always costs something: the tests that use what it names (through
    any chain of cells), else every test that checks a student function.
    """
    from .notebook import defined_names, used_names
    matches, owners = matches or {}, owners or {}
    call_imports = {n for k, n in import_hits if k == "call"}
    call_copies = {n for k, n in copy_hits if k == "call"}
    flags, groups, defined, flagged = [], [], set(), set()
    for index, cell in enumerate(cells):
        if cell["role"] not in ("answer", "student"):
            continue
        code, stub = cell["source"], cell["stub"]
        mine = defined_names(code)
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
            groups.append(mine | (mine & (call_imports | call_copies)))
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
    carriers = [(used_names(c["source"]), defined_names(c["source"])) for c in cells
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


# -- structure of the source: statements with names and order abstracted ----------------------------------
MIN_FUNCTION_STATEMENTS = 8    # cnnmath functions with fewer distinctive statements are too generic
MIN_STATEMENT_NODES = 6        # a statement this small (x = y + 1) says nothing about where it came from
STRUCTURE_CONTAINMENT = 0.6    # the fraction of a cnnmath function's statements found in the answer


_SKIPPED_FIELDS = frozenset({"ctx", "name", "returns", "decorator_list", "type_comment", "annotation"})


def _shape(node, memo):
    """(abstracted text, node count) of an AST node: names, arguments and constants abstracted (to
    their kind), attribute names, keyword-argument names and operators kept. Memoised per node."""
    key = id(node)
    if key in memo:
        return memo[key]
    if isinstance(node, ast.Name):
        out = ("N", 1)
    elif isinstance(node, ast.arg):
        out = ("A", 1)
    elif isinstance(node, ast.Constant):
        out = ("C" + type(node.value).__name__, 1)
    else:
        parts, size = [type(node).__name__], 1
        for field, value in ast.iter_fields(node):
            if field in _SKIPPED_FIELDS:
                continue
            for item in (value if isinstance(value, list) else [value]):
                if isinstance(item, ast.AST):
                    text, n = _shape(item, memo)
                    parts.append(text)
                    size += n
                else:
                    parts.append(repr(item))
        out = ("(" + " ".join(parts) + ")", size)
    memo[key] = out
    return out


def _statement_hashes(code):
    """Hashes of the abstracted statements of ``code`` (source, or a parsed tree), nested ones included."""
    import hashlib
    try:
        tree = ast.parse(code) if isinstance(code, str) else code
        memo, out = {}, set()
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                      ast.ClassDef, ast.Import, ast.ImportFrom)):
                text, size = _shape(node, memo)
                if size >= MIN_STATEMENT_NODES:
                    out.add(hashlib.blake2b(text.encode(), digest_size=8).digest())
        return out
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()


@functools.lru_cache(maxsize=None)
def library_statements(root=None):
    """((module:function, frozenset of statement hashes), ...) of cnnmath's functions (see _statement_hashes)."""
    if root is None:
        spec = importlib.util.find_spec("cnnmath")
        if spec is None or not spec.submodule_search_locations:
            return ()
        root = list(spec.submodule_search_locations)[0]
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in FORMULA_MODULES)
        for name in sorted(files):
            if not name.endswith(".py") or name in FORMULA_MODULES:
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                source = f.read()
            rel = os.path.relpath(os.path.join(dirpath, name), root)[:-3].replace(os.sep, ".")
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    hashes = frozenset(_statement_hashes(node))
                    if len(hashes) >= MIN_FUNCTION_STATEMENTS:
                        out.append((f"{rel}:{node.name}", hashes))
    return tuple(out)


def structure_containment(code, stub="", statements=None):
    """(highest fraction of a cnnmath function's statements found in ``code``, that function)."""
    if statements is None:
        statements = library_statements()
    mine = _statement_hashes(code) - _statement_hashes(stub)
    best, which = 0.0, None
    for name, lib in statements:
        c = len(lib & mine) / len(lib)
        if c > best:
            best, which = c, name
    return best, which


def warm_up():
    """Compute (once per process: cached) the fingerprints the per-call checks compare with."""
    library_code_fingerprints()
    library_statements()
