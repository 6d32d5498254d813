"""SymPy expressions across the sandbox boundary, as plain trees.

A derivation exercise returns a SymPy expression (an output-size formula, a gradient entry).
SymPy objects are not plain data, so :mod:`course_grader.wire` sends them as a *tree*: a JSON
list ``[name, child, ...]`` per node, with leaves

* ``["Symbol", "n"]`` (the name only: the trusted side decides the assumptions),
* ``["Integer", "12"]``, ``["Rational", "1", "2"]``, ``["Float", "0.5"]`` (numbers as strings),
* ``["Pi"]``, ``["Exp1"]``, ``["BooleanTrue"]``, ``["BooleanFalse"]``.

Both directions accept only the operations in :data:`OPERATIONS` (arithmetic, floor/ceiling,
Max/Min, Abs, Mod, Piecewise with relational conditions, exp/log/sin/cos, Heaviside, binomial,
factorial) and bound the tree (:data:`MAX_NODES` nodes, :data:`MAX_DEPTH` levels, numbers of at
most :data:`MAX_DIGITS` digits, short identifier names). On the trusted side the tree is rebuilt
by calling those SymPy constructors with ``evaluate=False``: nothing the student wrote is parsed
(no ``sympify``, no ``eval``) and nothing is computed while decoding, so a hostile tree costs at
most a few thousand object constructions. Evaluating the rebuilt expression (which may be
expensive: ``2**(10**59)``) is the checker's job, under its own time limit.

This file is also sent verbatim into the sandbox, before wire.py (it must not import course_grader
and imports SymPy only when a SymPy object is actually met), so both sides enforce the same rules.

Public entry points: :func:`expression_to_tree` (used by the encoder of wire.py) and
:func:`expression_from_tree` (used by its decoder).
"""
import re as _expr_re
import sys as _expr_sys

MAX_NODES = 4000
MAX_DEPTH = 80
MAX_DIGITS = 60
_NAME = _expr_re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}\Z")
_NUMBER = _expr_re.compile(r"-?[0-9]{1,%d}\Z" % MAX_DIGITS)
_FLOAT = _expr_re.compile(r"-?[0-9.eE+\-]{1,%d}\Z" % (MAX_DIGITS + 10))

# name -> (SymPy attribute, smallest and largest number of children; None = any)
OPERATIONS = {
    "Add": ("Add", 2, None), "Mul": ("Mul", 2, None), "Pow": ("Pow", 2, 2),
    "floor": ("floor", 1, 1), "ceiling": ("ceiling", 1, 1), "Max": ("Max", 1, None), "Min": ("Min", 1, None),
    "Abs": ("Abs", 1, 1), "Mod": ("Mod", 2, 2), "sign": ("sign", 1, 1),
    "Piecewise": ("Piecewise", 1, None), "ExprCondPair": ("ExprCondPair", 2, 2),
    "StrictLessThan": ("StrictLessThan", 2, 2), "LessThan": ("LessThan", 2, 2),
    "StrictGreaterThan": ("StrictGreaterThan", 2, 2), "GreaterThan": ("GreaterThan", 2, 2),
    "Equality": ("Equality", 2, 2), "Unequality": ("Unequality", 2, 2),
    "And": ("And", 2, None), "Or": ("Or", 2, None), "Not": ("Not", 1, 1),
    "exp": ("exp", 1, 1), "log": ("log", 1, 2), "sin": ("sin", 1, 1), "cos": ("cos", 1, 1),
    "Heaviside": ("Heaviside", 1, 2), "binomial": ("binomial", 2, 2), "factorial": ("factorial", 1, 1),
}
_CONSTANTS = {"Pi": "pi", "Exp1": "E", "BooleanTrue": "true", "BooleanFalse": "false"}
LEAVES = ("Symbol", "Integer", "Rational", "Float") + tuple(_CONSTANTS)


class ExpressionError(ValueError):
    """An expression that may not cross the boundary (unknown operation, too large, malformed)."""


def _allowed():
    return ", ".join(sorted(OPERATIONS, key=str.lower))


# -- the sandbox side: SymPy object -> tree -------------------------------------------------
def expression_to_tree(value):
    """The plain tree of a SymPy expression, or None if ``value`` is not a SymPy object.

    Raises
    ------
    ExpressionError
        The expression uses an operation outside :data:`OPERATIONS`, or exceeds the bounds.
    """
    sympy = _expr_sys.modules.get("sympy")
    if sympy is None or not isinstance(value, sympy.Basic):
        return None
    count = [0]

    def walk(node, depth):
        count[0] += 1
        if count[0] > MAX_NODES:
            raise ExpressionError(f"the expression has more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested more than {MAX_DEPTH} levels deep")
        if node.is_Symbol:
            name = str(node.name)
            if not _NAME.match(name):
                raise ExpressionError(f"symbol name {name[:40]!r} is not a short identifier")
            return ["Symbol", name]
        if node.is_Integer:
            text = str(int(node))
            if len(text.lstrip("-")) > MAX_DIGITS:
                raise ExpressionError(f"an integer in the expression has more than {MAX_DIGITS} digits")
            return ["Integer", text]
        if node.is_Rational:
            p, q = str(int(node.p)), str(int(node.q))
            if max(len(p.lstrip("-")), len(q)) > MAX_DIGITS:
                raise ExpressionError(f"a fraction in the expression has more than {MAX_DIGITS} digits")
            return ["Rational", p, q]
        if node.is_Float:
            return ["Float", str(node)[:MAX_DIGITS + 10]]
        name = type(node).__name__
        if name in _CONSTANTS:
            return [name]
        if name not in OPERATIONS:
            raise ExpressionError(f"the expression uses {name[:40]}, which the grader does not accept "
                                  f"(allowed: {_allowed()})")
        return [name] + [walk(arg, depth + 1) for arg in node.args]

    return walk(value, 0)


# -- the trusted side: tree -> SymPy object ---------------------------------------------------
def expression_from_tree(tree):
    """Rebuild a SymPy expression from a tree made by :func:`expression_to_tree`.

    Only the constructors named in :data:`OPERATIONS` and :data:`LEAVES` are called, each with
    ``evaluate=False``; symbols are plain ``Symbol(name)`` (no assumptions).

    Raises
    ------
    ExpressionError
        The tree is malformed, names an operation that is not allowed, or exceeds the bounds.
    """
    import sympy

    count = [0]

    def build(node, depth):
        count[0] += 1
        if count[0] > MAX_NODES:
            raise ExpressionError(f"expression tree has more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression tree is nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise ExpressionError(f"malformed expression node {str(node)[:60]}")
        name, rest = node[0], node[1:]
        if name in LEAVES:
            return _leaf(sympy, name, rest)
        if name not in OPERATIONS:
            raise ExpressionError(f"expression operation {name[:40]!r} is not allowed (allowed: {_allowed()})")
        attr, low, high = OPERATIONS[name]
        if len(rest) < low or (high is not None and len(rest) > high):
            raise ExpressionError(f"{name} takes {low}{'' if high == low else '+' if high is None else f'-{high}'} "
                                  f"arguments, got {len(rest)}")
        args = [build(child, depth + 1) for child in rest]
        if name == "ExprCondPair":
            return tuple(args)  # only a Piecewise takes it
        if name == "Piecewise" and not all(isinstance(a, tuple) for a in args):
            raise ExpressionError("Piecewise needs (expression, condition) pairs")
        if name != "Piecewise" and any(isinstance(a, tuple) for a in args):
            raise ExpressionError(f"{name} cannot take an (expression, condition) pair")
        try:
            return getattr(sympy, attr)(*args, evaluate=False)
        except Exception as exc:  # e.g. a relational between booleans
            raise ExpressionError(f"cannot rebuild {name}: {type(exc).__name__}: {str(exc)[:100]}") from None

    return build(tree, 0)


def _leaf(sympy, name, rest):
    if name in _CONSTANTS:
        if rest:
            raise ExpressionError(f"{name} takes no arguments")
        return getattr(sympy, _CONSTANTS[name])
    if not rest or not all(isinstance(v, str) for v in rest):
        raise ExpressionError(f"malformed {name} leaf")
    if name == "Symbol":
        if len(rest) != 1 or not _NAME.match(rest[0]):
            raise ExpressionError(f"symbol name {str(rest[0])[:40]!r} is not a short identifier")
        return sympy.Symbol(rest[0])
    if name == "Float":
        if len(rest) != 1 or not _FLOAT.match(rest[0]):
            raise ExpressionError(f"malformed Float {str(rest[0])[:40]!r}")
        try:
            return sympy.Float(rest[0])
        except Exception:
            raise ExpressionError(f"malformed Float {rest[0][:40]!r}") from None
    want = 1 if name == "Integer" else 2
    if len(rest) != want or not all(_NUMBER.match(v) for v in rest):
        raise ExpressionError(f"malformed {name} {rest!r:.80}: at most {MAX_DIGITS} digits each")
    if name == "Integer":
        return sympy.Integer(int(rest[0]))
    p, q = int(rest[0]), int(rest[1])
    if q <= 0:
        raise ExpressionError(f"Rational needs a positive denominator, got {q}")
    return sympy.Rational(p, q)
