# The grader sets GRADING_SEED per student (hidden cases); elsewhere it is 0.
_GRADED = "GRADING_SEED" in globals()
_ANSWERS = ()  # the answer functions' names (build.py fills them in)
GRADING_SEED = globals().get("GRADING_SEED", 0)
CHECK_WIDTH = 60  # nbgrader validate cuts longer lines
_HIDDEN_MARK = "#" * 3 + " BEGIN " + "HIDDEN TESTS"  # a source notebook's hidden tests (spelled so neither nbgrader nor a release sees the marker)
# Misconceptions a visible test can name (the ``hints`` of check_array and check_shape)
HINT_FLIPPED = ("the kernel is flipped (a true convolution); deep learning's "
                "convolution is cross-correlation: use k as it is")
HINT_NOT_FLIPPED = "the kernel is not flipped: a true convolution flips it"
HINT_OFF_BY_ONE = ("the output size is off by one: check floor((n + 2p - "
                   "d(k - 1) - 1) / s) + 1 (its + 1, and p zeros on each side)")
HINT_NO_PADDING = ("the padding was left out: add `padding` zeros on each side "
                   "of every spatial axis")


class CheckFailed(AssertionError):
    """A failed check: the student's message, and ``public_summary`` (the case and the kind of
    failure, never an expected value), which the grader shows when a hidden test fails."""

    def __init__(self, message, public_summary):
        super().__init__(message)
        self.public_summary = public_summary


def _short_lines(text):
    """``text`` wrapped to lines of at most CHECK_WIDTH characters (after a space where possible)."""
    import textwrap
    out = []
    for line in str(text).splitlines() or [""]:
        out += textwrap.wrap(line, CHECK_WIDTH, break_on_hyphens=False, subsequent_indent="  ") or [""]
    return "\n".join(out)


def _fail(name, what, detail=(), summary=None, hint=None):
    """Raise CheckFailed: "name: what" first, then the detail lines, then the hint."""
    lines = [f"{name}: {what}", *detail]
    if hint:
        lines.append("Likely misconception: " + hint)
    public = f"{name}: {summary or what}" + (f"; likely misconception: {hint}" if hint else "")
    raise CheckFailed(_short_lines("\n".join(lines)), public)


def _uses_library(value, lib, seen):
    """True if ``value`` (a global of the notebook) is or reaches the library through its code."""
    if id(value) in seen:
        return False
    seen.add(id(value))
    if type(value).__name__ == "module":
        return getattr(value, "__name__", "").split(".")[0] == lib
    module = getattr(value, "__module__", None) if callable(value) else None
    if isinstance(module, str) and module.split(".")[0] == lib:
        return True
    code = getattr(value, "__code__", None)
    codes = [code] if code is not None else []
    while codes:
        code = codes.pop()
        consts = [c for c in code.co_consts if isinstance(c, str)]
        if lib in code.co_names or any(lib in c.split(".")[0] for c in consts):
            return True
        for name in code.co_names:  # globals it reads: modules, imported or own helper functions
            if name in globals() and _uses_library(globals()[name], lib, seen):
                return True
        codes += [c for c in code.co_consts if hasattr(c, "co_names")]
    return False


def _no_reference_library():
    """Fail at once (one line) if an answer imports or calls the course library."""
    if _GRADED:
        return  # the grader checks the answers itself (and its tests import the library)
    import re
    lib = "".join(["cnn", "math"])
    names = [name for name in _ANSWERS if name in globals() and _uses_library(globals()[name], lib, set())]
    for cell in globals().get("In", []):  # the cells run so far (Jupyter); hidden tests excluded
        if not isinstance(cell, str) or _HIDDEN_MARK in cell or "def _no_reference_library" in cell:
            continue
        code = "\n".join(line.split("#")[0] for line in cell.splitlines())
        if re.search(r"\b" + lib + r"\b", code):
            names += re.findall(r"^def (\w+)", cell, re.M) or ["a cell"]
    if names:
        raise CheckFailed(_short_lines(f"answers must not use {lib}: {', '.join(sorted(set(names)))}"),
                          f"answers must not use {lib}")


def _off_by_one(got, expected):
    """True for a layer's output (N, C, *spatial) whose spatial sizes are off by at most one."""
    return (len(got) == len(expected) >= 3 and got[:2] == expected[:2] and got != expected
            and max(abs(a - b) for a, b in zip(got[2:], expected[2:])) == 1)


def _show_array(a):
    import numpy as _np
    with _np.printoptions(precision=4, suppress=True, linewidth=CHECK_WIDTH):
        return str(a)


def check_array(name, got, expected, rtol=None, atol=None, hints=None):
    """Compare an answer with the expected array: type, then shape, then dtype, then values.

    ``hints``: ``[(array, misconception), ...]``: if the answer equals one of these arrays,
    the message names that misconception.
    """
    _no_reference_library()
    expected = np.asarray(expected)
    if not isinstance(got, np.ndarray):
        _fail(name, "not a numpy array", [f"got {type(got).__name__}: {got!r}"[:200]],
              summary=f"not a numpy array (got {type(got).__name__})")
    hint = None
    for candidate, text in hints or ():
        candidate = np.asarray(candidate)
        if got.shape == candidate.shape and got.size and np.allclose(got, candidate, rtol=1e-4, atol=1e-5):
            hint = text
            break
    if got.shape != expected.shape:
        if hint is None and _off_by_one(got.shape, expected.shape):
            hint = HINT_OFF_BY_ONE
        _fail(name, "wrong shape", [f"expected shape {expected.shape}", f"got shape {got.shape}"],
              summary=f"wrong shape (got {got.shape})", hint=hint)
    if got.dtype != expected.dtype:
        _fail(name, "wrong dtype", [f"expected {expected.dtype}, got {got.dtype}"],
              summary=f"wrong dtype (got {got.dtype})")
    if rtol is None:
        rtol, atol = (1e-4, 1e-5) if expected.dtype == np.float32 else (1e-7, 1e-9)
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        bad = np.argwhere(~np.isclose(got, expected, rtol=rtol, atol=atol))
        where = tuple(int(i) for i in bad[0])
        detail = [f"expected {expected[where].item()!r}, got {got[where].item()!r}",
                  f"at index {where}", f"{len(bad)} of {expected.size} values differ"]
        if expected.size <= 36:
            detail += ["expected:", _show_array(expected), "got:", _show_array(got)]
        _fail(name, "wrong values", detail, hint=hint,
              summary=f"wrong values: {len(bad)} of {expected.size} differ, first at index {where}")


def check_shape(name, got, shape, hints=None):
    """Check that an answer is a numpy array of ``shape``; ``hints``: ``{wrong shape: misconception}``."""
    _no_reference_library()
    shape = tuple(shape)
    if not isinstance(got, np.ndarray):
        _fail(name, "not a numpy array", [f"got {type(got).__name__}: {got!r}"[:200]],
              summary=f"not a numpy array (got {type(got).__name__})")
    if got.shape != shape:
        hint = (hints or {}).get(got.shape)
        if hint is None and _off_by_one(got.shape, shape):
            hint = HINT_OFF_BY_ONE
        _fail(name, "wrong shape", [f"expected shape {shape}", f"got shape {got.shape}"],
              summary=f"wrong shape (got {got.shape})", hint=hint)


def check_number(name, got, expected, rtol=1e-7, atol=1e-9, integer=False):
    """Compare an answer with an expected number (an int when ``integer``), with a clear message."""
    _no_reference_library()
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if not isinstance(got, kinds) or isinstance(got, (bool, np.bool_)):
        kind = "an int" if integer else "a number"
        _fail(name, f"not {kind}", [f"got {type(got).__name__}: {got!r}"[:200]],
              summary=f"not {kind} (got {type(got).__name__})")
    close = got == expected if integer else abs(got - expected) <= atol + rtol * abs(expected)
    if not close:
        _fail(name, "wrong value", [f"expected {expected!r}", f"got {got!r}"])


def check_equal(name, got, expected):
    """Compare an answer with expected plain data (numbers, tuples, lists, records) exactly."""
    _no_reference_library()
    try:
        if bool(got == expected):
            return
    except (TypeError, ValueError):  # an array compared with a tuple, say
        pass
    detail, summary = [f"expected {expected!r}"[:300], f"got {got!r}"[:300]], "wrong value"
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        if len(got) != len(expected):
            summary = f"wrong length (got {len(got)})"
            detail.insert(0, f"expected {len(expected)} entries, got {len(got)}")
        else:
            bad = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
            summary = f"wrong values: {len(bad)} of {len(expected)} differ, first at index {bad[0]}"
            detail = [f"entry {bad[0]}: expected {expected[bad[0]]!r}"[:300], f"got {got[bad[0]]!r}"[:300],
                      f"{len(bad)} of {len(expected)} entries differ"]
    _fail(name, summary if summary.startswith("wrong length") else "wrong value", detail, summary=summary)
