"""Copies of the reference library that hide (issue 17, point 1): conv2d answers for the corpus.

Every case is a ``conv2d`` answer cell for the REAL conv2d notebook that is a working copy of
cnnmath's code (it computes the right convolution: tests/test_grader_copies.py checks that
outside the sandbox, against cnnmath itself), hidden one way: built at run time from a string
(base64, pieces, reversed), arriving as a code object (marshal, types.FunctionType of compiled
code), swapped into ``__code__`` after definition, renamed and reordered, diluted among 200 lines
of the student's own code, or a copied helper (cnnmath's im2col) under an honest-looking answer.
Each must cost conv2d's parts and raise a cnnmath flag naming the answer.
"""
import ast
import base64
import builtins
import marshal
import sys

from tests.grader_corpus.cases import copied_conv2d_source, working_copy

FUTURE = "from __future__ import annotations\n"


def _cached_geometry(src):
    """cnnmath's module-level lru_cache wrappers of its geometry resolvers, which working_copy leaves out."""
    geometry = sys.modules["cnnmath._geometry"]
    for cached, resolver in (("_remembered_conv", "_resolve_conv"), ("_remembered_window", "_resolve_window")):
        if cached in src:
            src += ("\n\n" + working_copy(getattr(geometry, resolver)).replace(FUTURE, "") +
                    f"\n\n{cached} = functools.lru_cache(maxsize=1024)({resolver})\n")
    return src


def _copy():
    """The working copy of cnnmath.conv_naive (+ helpers) and a conv2d calling it, without the future import."""
    return _cached_geometry(copied_conv2d_source().replace(FUTURE, ""))


def base64_exec():
    blob = base64.b64encode(_copy().encode()).decode()
    return f"import base64 as _b\nexec(_b.b64decode({blob!r}).decode())\n"


def joined_pieces():
    src = _copy()
    pieces = [src[i:i + 97] for i in range(0, len(src), 97)]
    return f"_pieces = {pieces!r}\nexec(''.join(_pieces), globals())\n"


def reversed_string():
    return f"_s = {_copy()[::-1]!r}\nexec(_s[::-1])\n"


def _marshalled(src):
    return marshal.dumps(compile(src, "<lib>", "exec"))


def marshal_code_object():
    return f"import marshal as _m\nexec(_m.loads({_marshalled(_copy())!r}))\n"


def function_from_compiled_code():
    """The copy wrapped in a factory whose code object is taken from compiled (reversed) source and
    turned into a function with types.FunctionType."""
    body = "".join("    " + l + "\n" for l in _copy().splitlines())
    src = "def _factory():\n" + body + "    return conv2d\n"
    return ("import types as _t\n"
            f"_mod = compile({src[::-1]!r}[::-1], 'mine', 'exec')\n"
            "conv2d = _t.FunctionType(_mod.co_consts[0], globals())()\n")


def code_swapped_after_definition():
    src = _copy().replace("def conv2d(", "def _impl(")
    return ("import marshal as _m\n"
            f"exec(_m.loads({_marshalled(src)!r}), globals())\n\n"
            "def conv2d(x, w, b=None, stride=1, padding=0):\n"
            "    \"\"\"My own convolution.\"\"\"\n"
            "    return None\n\n"
            "conv2d.__code__ = _impl.__code__\n")


class _Renamer(ast.NodeTransformer):
    """Every local name, argument and function renamed (not attributes, builtins, modules or keywords)."""

    KEEP = {"np", "numbers", "math", "functools", "itertools", "Sequence", "conv2d", "self"}

    def __init__(self):
        self.mapping = {}

    def new(self, name):
        if name in self.KEEP or hasattr(builtins, name):
            return name
        return self.mapping.setdefault(name, f"q{len(self.mapping)}")

    def visit_Name(self, node):
        node.id = self.new(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.new(node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node):
        node.name = self.new(node.name)
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node):
        node.name = self.new(node.name)
        self.generic_visit(node)
        return node

    def visit_keyword(self, node):   # keyword arguments of calls to the copy's own functions follow their rename
        if node.arg in self.mapping:
            node.arg = self.mapping[node.arg]
        self.generic_visit(node)
        return node


def renamed_and_reordered():
    """Names renamed, docstrings dropped, the functions in reverse order, independent statements swapped."""
    tree = ast.parse(_copy())
    renamer = _Renamer()
    renamer.mapping.update({a.arg: a.arg for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                            for a in f.args.kwonlyargs + f.args.args})   # callers pass them by name
    renamer.visit(tree)
    imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    defs = [s for s in tree.body if isinstance(s, ast.FunctionDef)][::-1]
    defs += [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            node.body = _swap_independent(body) or [ast.Pass()]
    tree.body = imports + defs
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _swap_independent(body):
    """Swap neighbouring assignments that do not read or write each other's names."""
    out = list(body)
    i = 0
    while i + 1 < len(out):
        a, b = out[i], out[i + 1]
        if isinstance(a, ast.Assign) and isinstance(b, ast.Assign):
            names = lambda n: {x.id for x in ast.walk(n) if isinstance(x, ast.Name)}
            if not names(a) & names(b):
                out[i], out[i + 1] = b, a
                i += 2
                continue
        i += 1
    return out


def diluted():
    """The copy in the middle of 200 lines of the student's own (honest, unused) helpers."""
    mine = []
    for k in range(34):
        mine.append(f"def my_helper_{k}(values, scale={k + 1}):\n"
                    f"    \"\"\"Scale, shift and clip (exercise {k}).\"\"\"\n"
                    "    total = 0.0\n"
                    "    for v in values:\n"
                    f"        total += (v * scale - {k}) ** 2\n"
                    "    return min(total, 1e9)\n\n")
    half = len(mine) // 2
    return "".join(mine[:half]) + _copy() + "\n\n" + "".join(mine[half:])


def copied_helper():
    """An honest-looking conv2d (one matrix product) on a copy of cnnmath's im2col."""
    helper = _cached_geometry(working_copy(sys.modules["cnnmath.im2col"].im2col).replace(FUTURE, ""))
    return helper + (
        "\n\ndef conv2d(x, w, b=None, stride=1, padding=0):\n"
        "    x = np.asarray(x, dtype=float)\n"
        "    w = np.asarray(w, dtype=float)\n"
        "    n, c_out = x.shape[0], w.shape[0]\n"
        "    h = (x.shape[2] + 2 * padding - w.shape[2]) // stride + 1\n"
        "    v = (x.shape[3] + 2 * padding - w.shape[3]) // stride + 1\n"
        "    cols = im2col(x, w.shape[2:], stride, padding)\n"
        "    z = np.einsum('ok,nkp->nop', w.reshape(c_out, -1), cols).reshape(n, c_out, h, v)\n"
        "    return z if b is None else z + np.asarray(b, dtype=float)[None, :, None, None]\n")


def _helper_reached_by(expression):
    blob = base64.b64encode(_copy().replace("def conv2d(", "def _hidden_conv(").encode()).decode()
    added = f"import base64 as _b\nexec(_b.b64decode({blob!r}).decode(), globals())\n"
    answer = ("def conv2d(x, w, b=None, stride=1, padding=0):\n"
              f"    return globals()[{expression}](x, w, b, stride, padding)\n")
    return answer, added


def helper_by_folded_name():
    """A cell the student added builds the copy under another name; the answer reaches it through
    globals() by a name spelled in two pieces (Python folds them: the walk of conv2d finds it)."""
    return _helper_reached_by("'_hid' + 'den_conv'")


def helper_by_computed_name():
    """The same, the name computed at run time: no cell and no constant names the copy, so the flag
    cannot tell which parts use it, and it costs every part that checks a student function."""
    return _helper_reached_by("''.join(['_hid', 'den_conv'])")


# answers built by one function each: the conv2d answer cell, or (answer, a cell added after it)
COPY_CASES = {
    "copy_exec_base64": base64_exec,
    "copy_exec_joined_pieces": joined_pieces,
    "copy_exec_reversed_string": reversed_string,
    "copy_marshal_code_object": marshal_code_object,
    "copy_function_from_compiled_code": function_from_compiled_code,
    "copy_code_swapped_after_definition": code_swapped_after_definition,
    "copy_renamed_and_reordered": renamed_and_reordered,
    "copy_diluted_in_200_lines": diluted,
    "copy_of_im2col_helper": copied_helper,
    "copy_helper_by_folded_name": helper_by_folded_name,
    "copy_helper_by_computed_name": helper_by_computed_name,
}
LOSES_EVERY_PART = {"copy_helper_by_computed_name"}
