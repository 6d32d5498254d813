"""Fingerprints of cnnmath's functions, and of answers, that survive renaming, reordering and hiding.

Two kinds, both computed on the trusted side from cnnmath's own sources (once per process: cached):

* bytecode: the shingles of normalised bytecode tokens of every cnnmath function compiled under
  this Python (course_grader._child_code, the same code the sandbox uses to fingerprint what ran);
* statements: the hashes of every statement of a cnnmath function with names, arguments and
  constants abstracted (order does not matter: a set).

Both compare by containment (the fraction of one cnnmath function found in the answer), so
diluting a copy among the student's own code does not hide it.
"""
import ast
import functools
import importlib.util
import os

# cnnmath's SymPy formulas: the answers of the derivations notebook are these formulas, which can
# only be derived, not copied (a right answer may match them token for token)
FORMULA_MODULES = frozenset({"symbolic.py", "symbolic"})   # the module, or the package folder


def cnnmath_sources(root=None):
    """[(module path relative to cnnmath, source)] of cnnmath's .py files (the formula modules excepted)."""
    if root is None:
        spec = importlib.util.find_spec("cnnmath")
        if spec is None or not spec.submodule_search_locations:
            return []
        root = list(spec.submodule_search_locations)[0]
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in FORMULA_MODULES)
        for name in sorted(files):
            if name.endswith(".py") and name not in FORMULA_MODULES:
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    out.append((os.path.relpath(path, root)[:-3].replace(os.sep, "."), f.read()))
    return out


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
    out = []
    for rel, source in cnnmath_sources(root):
        try:
            module = compile(source, f"<cnnmath.{rel}>", "exec", dont_inherit=True)
        except SyntaxError:
            continue
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
    return _best_containment(ran, fingerprints)


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
    out = []
    for rel, source in cnnmath_sources(root):
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


def _best_containment(found, library):
    """(highest fraction of one library function's hashes in ``found``, that function's name)."""
    best, which = 0.0, None
    for name, lib in library:
        c = len(lib & found) / len(lib)
        if c > best:
            best, which = c, name
    return best, which


def structure_containment(code, stub="", statements=None):
    """(highest fraction of a cnnmath function's statements found in ``code``, that function)."""
    if statements is None:
        statements = library_statements()
    mine = _statement_hashes(code) - _statement_hashes(stub)
    return _best_containment(mine, statements)


def warm_up():
    """Compute (once per process: cached) the fingerprints the per-call checks compare with."""
    library_code_fingerprints()
    library_statements()
