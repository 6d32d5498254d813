"""Detecting answers that call or copy the reference library ``cnnmath``."""
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
