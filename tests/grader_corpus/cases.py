"""A corpus of bad submissions for the honest grader (issue 7), as a declarative table.

Every case is built at test time from the REAL released notebook of its assignment and the
reference answers of its source notebook, by editing cells programmatically. A case says:

* ``name``        -- also the student id it is submitted as;
* ``assignment``  -- conv2d, output_size or conv_backward;
* ``build``       -- ``build(ctx) -> {file name: notebook dict | str | bytes}``, the files of the
  student's submission folder (``ctx`` gives the course root, the released notebooks, the
  reference answers, a listening TCP port and a marker for processes the case starts);
* ``lost``        -- the graded parts (test grade_ids) that must earn 0; every other part must
  earn its full points, so the expected score is exact: total - sum(points of ``lost``);
* ``flags``       -- the exact set of flag kinds the grader must raise (timeout, crash, memory,
  output, tampering, wire, cnnmath, broken);
* ``misconception`` -- for the misconception cases: the key every lost part's feedback names;
* ``message``     -- a substring the student's grader messages must contain (broken notebooks).

Attacks on isolation are written so that the attack *succeeding* would earn points: the
answer defines the correct function only after reading a forbidden file, writing outside
the scratch folder or reaching the network. Expected scores therefore prove that the attack
failed. A control case does the same with an allowed read and must earn full points, which
shows that the attack template itself works.
"""
import codecs
import copy
import inspect
import json
import builtins
import tokenize
import keyword
import io
import re
import sys
import textwrap
import types
from dataclasses import dataclass, field

from tests.grader_helpers import FORK_BOMB

ASSIGNMENTS = ("conv2d", "output_size", "conv_backward")

# conv2d's graded parts
P1 = "test_cross_correlate2d_seed_example"
P2 = "test_conv2d_multichannel_bias"
P3 = "test_conv2d_stride_padding"
P4 = "test_conv2d_params"
CONV = (P2, P3)


@dataclass
class Case:
    name: str
    assignment: str
    build: object
    lost: tuple = ()
    flags: frozenset = frozenset()
    misconception: str = None
    message: str = None
    honest: bool = False
    doc: str = ""
    extra: dict = field(default_factory=dict)


# -- notebook editing helpers -----------------------------------------------------------------
def nbg(cell):
    md = cell.get("metadata")
    return md.get("nbgrader", {}) if isinstance(md, dict) and isinstance(md.get("nbgrader"), dict) else {}


def gid_index(nb, gid):
    for i, c in enumerate(nb["cells"]):
        if nbg(c).get("grade_id") == gid:
            return i
    raise KeyError(gid)


def id_index(nb, cell_id):
    for i, c in enumerate(nb["cells"]):
        if c.get("id") == cell_id:
            return i
    raise KeyError(cell_id)


def code_cell(source, metadata=None, cell_id=None):
    cell = {"cell_type": "code", "execution_count": None, "metadata": metadata or {}, "outputs": [],
            "source": source}
    if cell_id:
        cell["id"] = cell_id
    return cell


def answered(ctx, assignment, **overrides):
    """The released notebook with every answer filled in (reference answers, then overrides)."""
    nb = copy.deepcopy(ctx.release[assignment])
    answers = dict(ctx.sol[assignment], **overrides)
    for c in nb["cells"]:
        gid = nbg(c).get("grade_id")
        if nbg(c).get("solution") and gid in answers:
            c["source"] = answers[gid]
    return nb


def insert_after(nb, gid, source, n=0):
    nb["cells"].insert(gid_index(nb, gid) + 1, code_cell(source, cell_id=f"added-{gid}-{n}"))
    return nb


def replace_in(code, old, new):
    assert old in code, f"the reference answer changed: {old!r} not found; update the corpus"
    return code.replace(old, new)


def sol(ctx, assignment, gid):
    return ctx.sol[assignment][gid]


def flipped(ctx):
    return replace_in(sol(ctx, "conv2d", "conv2d"), "w[:, :, i, j]", "w[:, :, -1 - i, -1 - j]")


def gated(attack, answer):
    """The answer is defined only if the attack code runs without raising."""
    return textwrap.dedent(attack).strip() + "\n\n" + answer


# -- honest students --------------------------------------------------------------------------
def honest_full(ctx, a):
    return {f"{a}.ipynb": answered(ctx, a)}


def honest_partial_conv2d(ctx):
    # correct except that conv2d ignores the stride (a realistic, honest partial answer)
    code = replace_in(sol(ctx, "conv2d", "conv2d"),
                      "patch = x[:, :, i:i + stride * (h_out - 1) + 1:stride, j:j + stride * (w_out - 1) + 1:stride]",
                      "patch = x[:, :, i:i + h_out, j:j + w_out]")
    code = replace_in(code, "h_out = (h - kh) // stride + 1", "h_out = h - kh + 1")
    code = replace_in(code, "w_out = (wd - kw) // stride + 1", "w_out = wd - kw + 1")
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


def honest_partial_output_size(ctx):
    # output_size and uncovered right; padding_for_mode left unanswered
    nb = answered(ctx, "output_size")
    i = gid_index(nb, "padding_for_mode")
    nb["cells"][i]["source"] = ctx.release["output_size"]["cells"][i]["source"]
    return {"output_size.ipynb": nb}


def honest_partial_conv_backward(ctx):
    # forward and bias gradient only
    nb = answered(ctx, "conv_backward")
    for gid in ("conv2d_grad_weight", "conv2d_grad_input", "numeric_grad_weight", "relative_error"):
        i = gid_index(nb, gid)
        nb["cells"][i]["source"] = ctx.release["conv_backward"]["cells"][i]["source"]
    return {"conv_backward.ipynb": nb}


# -- isolation ---------------------------------------------------------------------------------
def _read_any(paths):
    return f"""
    _stolen = None
    for _p in {paths!r}:
        try:
            with open(_p, "rb") as _f:
                _stolen = _f.read()
            break
        except OSError:
            pass
    if not _stolen:
        raise RuntimeError("isolation held: nothing readable")
    """


def read_solutions(ctx):
    paths = [f"{ctx.root}/solutions/conv2d/conv2d.ipynb", f"{ctx.repo}/solutions/conv2d/conv2d.ipynb",
             f"{ctx.repo}/solutions/_sources/conv2d.nb.txt", "../solutions/conv2d/conv2d.ipynb",
             "../../../solutions/conv2d/conv2d.ipynb", "/proc/1/cwd/solutions/conv2d/conv2d.ipynb"]
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=gated(_read_any(paths), sol(ctx, "conv2d", "conv2d")))}


def read_gradebook(ctx):
    paths = [f"{ctx.root}/gradebook.db", "../gradebook.db", "../../../gradebook.db"]
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=gated(_read_any(paths), sol(ctx, "conv2d", "conv2d")))}


def read_other_student(ctx):
    paths = [f"{ctx.root}/submitted/honest_full_conv2d/conv2d/conv2d.ipynb",
             f"{ctx.root}/incoming/honest_full_conv2d/conv2d/conv2d.ipynb",
             f"{ctx.root}/autograded/honest_full_conv2d/conv2d/conv2d.ipynb",
             "../honest_full_conv2d/conv2d/conv2d.ipynb"]
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=gated(_read_any(paths), sol(ctx, "conv2d", "conv2d")))}


def search_filesystem(ctx):
    # walk everything outside the system folders for a file naming a hidden test
    attack = """
    import os
    _found = None
    for _top in sorted(os.listdir("/")):
        if _top in ("proc", "sys", "dev", "usr", "lib", "lib32", "lib64", "bin", "sbin", "grader"):
            continue
        for _d, _dirs, _files in os.walk("/" + _top):
            for _fn in _files:
                if _fn.endswith((".ipynb", ".db", ".txt", ".json")):
                    try:
                        with open(os.path.join(_d, _fn), "rb") as _f:
                            if b"conv2d_stride_padding" in _f.read(4 << 20):
                                _found = os.path.join(_d, _fn)
                    except OSError:
                        pass
    if _found is None:
        raise RuntimeError("isolation held: no hidden tests found")
    """
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=gated(attack, sol(ctx, "conv2d", "conv2d")))}


def control_allowed_read(ctx):
    # the same template with files the sandbox may read: must earn full points
    paths = ["/etc/passwd", "/usr/lib/os-release", "/etc/ld.so.cache"]
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=gated(_read_any(paths), sol(ctx, "conv2d", "conv2d")))}


def write_outside(ctx):
    attack = f"""
    import os
    _wrote = False
    for _p in {[f"{ctx.root}/pwned-write_outside.txt", f"{ctx.root}/autograded/pwned.txt",
                f"{ctx.root}/submitted/honest_full_conv2d/conv2d/pwned.txt", "../pwned.txt",
                "/proc/1/cwd/pwned.txt"]!r}:
        try:
            with open(_p, "w") as _f:
                _f.write("pwned")
            _wrote = True
        except OSError:
            pass
    try:
        with open({f"{ctx.root}/gradebook.db"!r}, "ab") as _f:
            _f.write(b"garbage")
        _wrote = True
    except OSError:
        pass
    with open("/scratch/allowed.txt", "w") as _f:   # the scratch folder is writable
        _f.write("fine")
    if not _wrote:
        raise RuntimeError("isolation held: nothing writable outside scratch")
    """
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=gated(attack, sol(ctx, "conv2d", "conv2d")))}


def network(ctx):
    attack = f"""
    import socket
    _ok = False
    for _host in {["127.0.0.1", *ctx.host_ips]!r}:
        try:
            socket.create_connection((_host, {ctx.port}), timeout=1).close()
            _ok = True
        except OSError:
            pass
    try:
        socket.getaddrinfo("pypi.org", 443)
        _ok = True
    except OSError:
        pass
    if not _ok:
        raise RuntimeError("isolation held: no network")
    """
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=gated(attack, sol(ctx, "conv2d", "conv2d")))}


def orphan_child(ctx):
    marker = ctx.marker("orphan_child")
    late = f"import time, os\ntime.sleep(20)\nopen({ctx.root + '/late-orphan_child.txt'!r}, 'w').write('late')\n"
    code = f"""import os, subprocess, sys, time
# a detached grandchild that should outlive the notebook and write later
subprocess.Popen([sys.executable, "-c", {late!r}, {marker!r}], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", {late!r}, {marker!r}])
    os._exit(0)
time.sleep(0.2)
"""
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d"), P4, code)}


def fork_bomb(ctx):
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d"), P1, FORK_BOMB)}


def memory_hog(ctx):
    code = """import numpy as np
def _hog():
    blocks = []
    while True:
        blocks.append(np.empty(10 ** 7))   # address space counts, touched or not
_hog()
"""
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d"), P1, code)}


def infinite_loop(ctx):
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d="def conv2d(x, w, b=None, stride=1, padding=0):\n"
                                                            "    while True:\n        pass\n")}


def loop_after_tests(ctx):
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d"), P4, "while True:\n    pass\n")}


def huge_output(ctx):
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d"), P1, "for _ in range(10 ** 6):\n"
                                                                        "    print('spam ' * 100)\n")}


# -- integrity of the tests ---------------------------------------------------------------
def _with(nb, gid, fn):
    fn(nb["cells"][gid_index(nb, gid)])
    return nb


def deleted_test(ctx):
    nb = answered(ctx, "conv2d")
    del nb["cells"][gid_index(nb, P2)]
    return {"conv2d.ipynb": nb}


def edited_tests(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    for gid in CONV:
        _with(nb, gid, lambda c: c.update(source='"""Always passes."""\npass\n'))
    return {"conv2d.ipynb": nb}


def renamed_test(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    _with(nb, P2, lambda c: c["metadata"]["nbgrader"].update(grade_id="test_bonus_points"))
    _with(nb, P3, lambda c: c.update(source='"""Renamed."""\npass\n'))
    return {"conv2d.ipynb": nb}


def duplicated_test(ctx):
    nb = answered(ctx, "conv2d")
    i = gid_index(nb, P4)
    dup = copy.deepcopy(nb["cells"][i])
    dup["id"] = "dup-params"
    nb["cells"][i + 1:i + 1] = [dup, copy.deepcopy(dup)]
    nb["cells"][i + 2]["id"] = "dup-params-2"
    return {"conv2d.ipynb": nb}


def retyped_test(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    for gid in CONV:
        _with(nb, gid, lambda c: (c.update(cell_type="raw"), c.pop("outputs", None),
                                  c.pop("execution_count", None)))
    return {"conv2d.ipynb": nb}


def altered_points(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    _with(nb, P2, lambda c: c["metadata"]["nbgrader"].update(points=0))
    _with(nb, P1, lambda c: c["metadata"]["nbgrader"].update(points=300))
    _with(nb, "conv2d", lambda c: c["metadata"]["nbgrader"].update(grade=True, points=50))
    return {"conv2d.ipynb": nb}


def altered_grade_flags(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    _with(nb, P2, lambda c: c["metadata"]["nbgrader"].update(grade=False, locked=False))
    _with(nb, P3, lambda c: c["metadata"]["nbgrader"].update(solution=True, grade=False))
    return {"conv2d.ipynb": nb}


def extra_grade_cell(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    meta = {"nbgrader": {"grade": True, "grade_id": "test_extra_credit", "locked": True, "points": 50,
                         "solution": False, "schema_version": 3, "task": False}}
    nb["cells"].insert(gid_index(nb, P1) + 1, code_cell('"""Extra credit."""\nassert True\n', meta, "extra-1"))
    meta2 = copy.deepcopy(meta)
    meta2["nbgrader"]["grade_id"] = P2          # a second copy of a real grade id, placed first
    nb["cells"].insert(gid_index(nb, "conv2d"), code_cell("pass\n", meta2, "extra-2"))
    return {"conv2d.ipynb": nb}


def answer_metadata_stripped(ctx):
    nb = answered(ctx, "conv2d")
    _with(nb, "conv2d", lambda c: c["metadata"].pop("nbgrader"))   # the cell id is kept
    return {"conv2d.ipynb": nb}


def bad_nbgrader_metadata(ctx):
    nb = answered(ctx, "conv2d")
    _with(nb, "conv2d_params", lambda c: c["metadata"].update(nbgrader="garbage"))
    _with(nb, "cross_correlate2d", lambda c: c["metadata"]["nbgrader"].update(grade_id=12, schema_version="x"))
    nb["cells"][0]["metadata"] = ["not", "a", "dict"]
    nb["metadata"]["nbgrader"] = 42
    return {"conv2d.ipynb": nb}


# -- forged results ---------------------------------------------------------------------------
FORGERY_PATCH_NUMPY = """import numpy as np, numpy.testing
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
"""

FORGERY_PATCH_HELPERS = """import builtins
def check_array(*args, **kwargs):
    return None
def check_number(*args, **kwargs):
    return None
builtins.check_array = check_array
builtins.AssertionError = type("AssertionError", (Exception,), {})
"""

FORGERY_IPYTHON = """import sys
ip = get_ipython()
ip.input_transformers_cleanup.append(lambda lines: ["pass\\n"])
ip.input_transformers_post.append(lambda lines: ["pass\\n"])
ip.ast_transformers.append(object())
"""

FORGERY_CUSTOM_EXC = """import sys
get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)
sys.excepthook = lambda *a: None
"""


def forged_patch_numpy(ctx):
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d", conv2d=flipped(ctx)), "setup-imports",
                                         FORGERY_PATCH_NUMPY)}


def forged_patch_helpers(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    insert_after(nb, "seed-data", FORGERY_PATCH_HELPERS)
    return {"conv2d.ipynb": nb}


def forged_ipython_transformers(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    # in a try: the sandbox's get_ipython may not have these attributes
    insert_after(nb, "setup-imports", "try:\n" + textwrap.indent(FORGERY_IPYTHON, "    ") + "except Exception:\n    pass\n")
    return {"conv2d.ipynb": nb}


def forged_custom_exc(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    insert_after(nb, "setup-imports", "try:\n" + textwrap.indent(FORGERY_CUSTOM_EXC, "    ") + "except Exception:\n    pass\n")
    return {"conv2d.ipynb": nb}


def forged_ndarray_subclass(ctx):
    code = """class Liar(np.ndarray):
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __array_function__(self, func, types, args, kwargs):
        return True
    def __array_ufunc__(self, *args, **kwargs):
        return np.ones((), dtype=bool)

def conv2d(x, w, b=None, stride=1, padding=0):
    n, o = np.shape(x)[0], np.shape(w)[0]
    return np.zeros((n, o, 2, 2)).view(Liar)
"""
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


def forged_always_equal(ctx):
    code_conv = """class AlwaysEqual:
    shape = property(lambda self: self)
    dtype = property(lambda self: self)
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __array__(self, *a, **k):
        return np.zeros(1)

def conv2d(x, w, b=None, stride=1, padding=0):
    return AlwaysEqual()
"""
    code_params = """class Forever(int):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = int.__hash__

def conv2d_params(f, c_in, c_out):
    return Forever(0)
"""
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code_conv, conv2d_params=code_params)}


def forged_sys_exit(ctx):
    # conv2d exits the kernel "successfully" when called; a cell after the last test exits too
    code = replace_in(sol(ctx, "conv2d", "conv2d"), "def conv2d(x, w, b=None, stride=1, padding=0):\n",
                      "def conv2d(x, w, b=None, stride=1, padding=0):\n    import sys\n    sys.exit(0)\n")
    nb = answered(ctx, "conv2d", conv2d=code)
    insert_after(nb, P4, "raise SystemExit('stop grading here')\n")
    return {"conv2d.ipynb": nb}


def os_exit_midway(ctx):
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d"), P1, "import os\nos._exit(0)\n")}


def segfault_midway(ctx):
    return {"conv2d.ipynb": insert_after(answered(ctx, "conv2d"), P2, "import ctypes\nctypes.string_at(0)\n")}


def forged_kernel_reply(ctx):
    # the student's function writes a well-formed "ok" reply of its own on every pipe it can find,
    # using the wire format of the process it runs in (which it can reach through its caller's frame)
    code = """import os, struct, sys
import numpy as np

def conv2d(x, w, b=None, stride=1, padding=0):
    dumps = sys._getframe(1).f_globals.get("dumps")
    fake = {"ok": True, "value": np.zeros((1, 1, 2, 2)), "stdout": "", "stderr": "", "output_exceeded": False}
    payload = dumps(fake) if dumps else b"{}"
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack(">Q", len(payload)) + payload)
        except OSError:
            pass
    return np.zeros((1, 1, 2, 2))
"""
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


SHADOW_NUMPY = '''"""A numpy that says yes to everything."""
import sys
def allclose(*a, **k):
    return True
def array_equal(*a, **k):
    return True
'''


def shadowed_modules(ctx):
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    # the student also tries to plant them where the kernel starts
    insert_after(nb, "setup-imports", "for _name in ('numpy.py', 'sitecustomize.py'):\n"
                                      "    with open(_name, 'w') as _f:\n"
                                      "        _f.write('allclose = lambda *a, **k: True\\n')\n")
    files = {"conv2d.ipynb": nb, "numpy.py": SHADOW_NUMPY, "sitecustomize.py": "import builtins\nbuiltins.print = None\n",
             "cnnmath.py": "def conv2d(*a, **k):\n    return 0\n\ndef cross_correlate(*a, **k):\n    return 0\n",
             "check_helpers.py": "def check_array(*a, **k):\n    pass\n"}
    return files


# -- cnnmath -------------------------------------------------------------------------------
def import_cnnmath(ctx):
    code = ("import cnnmath\n\ndef conv2d(x, w, b=None, stride=1, padding=0):\n"
            "    return cnnmath.conv2d(x, w, b, stride=stride, padding=padding)\n")
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


def import_cnnmath_string_tricks(ctx):
    code = """import importlib

def conv2d(x, w, b=None, stride=1, padding=0):
    name = "".join(reversed("htamnnc"))
    try:
        lib = importlib.import_module(name)
    except ImportError:
        lib = __import__("cnn" + "math")
    return lib.conv2d(x, w, b, stride=stride, padding=padding)
"""
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


def working_copy(fn):
    """Self-contained source of a cnnmath function and every cnnmath helper it needs (a real copy)."""
    seen, order, mods = set(), [], []
    def visit(obj):
        key = (obj.__module__, obj.__qualname__)
        if key in seen: return
        seen.add(key)
        mod = sys.modules[obj.__module__]
        if mod not in mods: mods.append(mod)
        codes = []
        if isinstance(obj, type):
            for v in vars(obj).values():
                f = getattr(v, "__func__", v); f = getattr(f, "fget", f)
                if isinstance(f, types.FunctionType): codes.append(f.__code__)
        else:
            codes.append(obj.__code__)
        names = set()
        while codes:
            c = codes.pop(); names |= set(c.co_names)
            codes += [k for k in c.co_consts if isinstance(k, types.CodeType)]
        for n in sorted(names):
            v = getattr(mod, n, None)
            if isinstance(v, (types.FunctionType, type)) and getattr(v, "__module__", "").startswith("cnnmath"):
                visit(v)
        order.append(obj)
    visit(fn)
    imports = []
    for m in mods:
        for line in inspect.getsource(m).splitlines():
            if re.match(r"(import |from (?!\.)\S+ import )", line) and line not in imports:
                imports.append(line)
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(inspect.getsource(o) for o in order)


def copied_conv2d_source():
    import cnnmath  # noqa: F401  (the trusted test process may)
    return working_copy(sys.modules["cnnmath.conv"].conv_naive) + (
        "\n\n\ndef conv2d(x, w, b=None, stride=1, padding=0):\n"
        "    return conv_naive(x, w, b, stride=stride, padding=padding)\n")


def copied_cnnmath(ctx):
    # a working, self-contained copy: it would pass every test if it were not caught
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=copied_conv2d_source())}


def copied_cnnmath_obfuscated(ctx):
    # the same copy, compressed and base64-encoded, decoded and exec'd at run time
    import base64
    import zlib
    blob = base64.b64encode(zlib.compress(copied_conv2d_source().encode())).decode()
    code = ("import base64, zlib\n_ns = {}\n"
            f"exec(zlib.decompress(base64.b64decode({blob!r})).decode(), _ns)\n"
            "def conv2d(x, w, b=None, stride=1, padding=0):\n"
            "    return _ns['conv2d'](x, w, b, stride=stride, padding=padding)\n")
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


def cnnmath_in_helper_cell(ctx):
    nb = answered(ctx, "conv2d", conv2d="def conv2d(x, w, b=None, stride=1, padding=0):\n"
                                        "    return _reference(x, w, b, stride=stride, padding=padding)\n")
    insert_after(nb, "task-2", "try:\n    from cnnmath import conv2d as _reference\nexcept ImportError:\n"
                               "    _reference = None\n")
    return {"conv2d.ipynb": nb}


# -- broken notebooks ------------------------------------------------------------------------
def invalid_json(ctx):
    return {"conv2d.ipynb": json.dumps(answered(ctx, "conv2d"))[:900]}


def empty_file(ctx):
    return {"conv2d.ipynb": b""}


def wrong_nbformat(ctx):
    nb = answered(ctx, "conv2d")
    nb["nbformat"] = 5
    return {"conv2d.ipynb": nb}


def not_a_notebook(ctx):
    return {"conv2d.ipynb": json.dumps([{"cells": []}])}


def utf16(ctx):
    text = json.dumps(answered(ctx, "conv2d"), ensure_ascii=False)
    return {"conv2d.ipynb": codecs.BOM_UTF16_LE + text.encode("utf-16-le")}


def utf8_bom(ctx):
    return {"conv2d.ipynb": codecs.BOM_UTF8 + json.dumps(answered(ctx, "conv2d"), ensure_ascii=False).encode()}


def latin1(ctx):
    nb = answered(ctx, "conv2d", conv2d="# Noël, café: déjà vu\n" + sol(ctx, "conv2d", "conv2d"))
    return {"conv2d.ipynb": json.dumps(nb, ensure_ascii=False).encode("latin-1", "backslashreplace")}


def wrong_file_name(ctx):
    return {"Conv2D (1).ipynb": answered(ctx, "conv2d")}


def unknown_kernel(ctx):
    nb = answered(ctx, "conv2d")
    nb["metadata"]["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia 1.9", "language": "julia"}
    nb["metadata"]["language_info"] = {"name": "julia"}
    return {"conv2d.ipynb": nb}


def garbage_cells(ctx):
    nb = answered(ctx, "conv2d")
    nb["cells"][1:1] = ["just a string", {"cell_type": "widget"}, 17]
    return {"conv2d.ipynb": nb}


# -- stderr, hard-coded answers ---------------------------------------------------------------
def stderr_output(ctx):
    code = "import sys, warnings, logging\n" + sol(ctx, "conv2d", "conv2d")
    code = replace_in(code, "    return z\n", "    print('debug: z has shape', z.shape, file=sys.stderr)\n"
                                           "    warnings.warn('this is only a warning')\n    return z\n")
    nb = answered(ctx, "conv2d", conv2d=code)
    insert_after(nb, P1, "import sys, logging\nprint('a message on stderr', file=sys.stderr)\n"
                         "logging.getLogger('student').error('logged to stderr')\n")
    return {"conv2d.ipynb": nb}


def hardcoded_visible(ctx):
    cc = """def cross_correlate2d(x, k):
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if x.shape == (4, 4) and k.shape == (3, 3):
        return np.array([[4.0, 0.0], [4.0, 3.0]])
    if k.shape == (1, 1):
        return k[0, 0] * x
    if x.shape == (3, 4):
        return np.full((3, 2), -2.0)
    return np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))
"""
    params = """def conv2d_params(f, c_in, c_out):
    return {(3, 3, 8): 224, (3, 8, 16): 1168, (1, 1, 1): 2, (5, 2, 3): 153}.get((f, c_in, c_out), 0)
"""
    return {"conv2d.ipynb": answered(ctx, "conv2d", cross_correlate2d=cc, conv2d_params=params)}


# -- misconceptions (honest but wrong) ---------------------------------------------------------
def _conv2d_with(ctx, *edits):
    code = sol(ctx, "conv2d", "conv2d")
    for old, new in edits:
        code = replace_in(code, old, new)
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


PAD = "((0, 0), (0, 0), (padding, padding), (padding, padding))"


def m_flipped(ctx):
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=flipped(ctx))}


def m_padding_forgotten(ctx):
    return _conv2d_with(ctx, (PAD, "((0, 0), (0, 0), (0, 0), (0, 0))"))


def m_padding_doubled(ctx):
    return _conv2d_with(ctx, (PAD, "((0, 0), (0, 0), (2 * padding, 2 * padding), (2 * padding, 2 * padding))"))


def m_off_by_one(ctx):
    return _conv2d_with(ctx, ("h_out = (h - kh) // stride + 1", "h_out = (h - kh) // stride"),
                        ("w_out = (wd - kw) // stride + 1", "w_out = (wd - kw) // stride"))


def m_weights_transposed(ctx):
    return _conv2d_with(ctx, ('"nchw,oc->nohw"', '"nchw,co->nohw"'),
                        ("o, _, kh, kw = w.shape", "_, o, kh, kw = w.shape"))


def m_channels_last(ctx):
    return _conv2d_with(ctx, ("    return z\n", "    return z.transpose(0, 2, 3, 1)\n"))


def _output_size_with(ctx, old, new):
    code = replace_in(sol(ctx, "output_size", "output_size"), old, new)
    return {"output_size.ipynb": answered(ctx, "output_size", output_size=code)}


OS_FORMULA = "(n + 2 * padding - dilation * (k - 1) - 1) // stride + 1"


def m_os_off_by_one(ctx):
    return _output_size_with(ctx, OS_FORMULA, "(n + 2 * padding - dilation * (k - 1) - 1) // stride")


def m_os_padding_forgotten(ctx):
    return _output_size_with(ctx, OS_FORMULA, "(n - dilation * (k - 1) - 1) // stride + 1")


def m_os_padding_doubled(ctx):
    return _output_size_with(ctx, OS_FORMULA, "(n + 4 * padding - dilation * (k - 1) - 1) // stride + 1")


def m_stride_ignored_backward(ctx):
    s = "stride * (h_out - 1) + 1:stride, j:j + stride * (w_out - 1) + 1:stride]"
    gw = replace_in(sol(ctx, "conv_backward", "conv2d_grad_weight"), f"i:i + {s}", "i:i + h_out, j:j + w_out]")
    gi = replace_in(sol(ctx, "conv_backward", "conv2d_grad_input"), f"i:i + {s}", "i:i + h_out, j:j + w_out]")
    return {"conv_backward.ipynb": answered(ctx, "conv_backward", conv2d_grad_weight=gw, conv2d_grad_input=gi)}


def m_backward_flipped(ctx):
    gi = replace_in(sol(ctx, "conv_backward", "conv2d_grad_input"), "w[:, :, i, j]", "w[:, :, -1 - i, -1 - j]")
    return {"conv_backward.ipynb": answered(ctx, "conv_backward", conv2d_grad_input=gi)}


# -- more forgeries, copies, resources and stranger files ---------------------------------------
def forged_reply_with_seq(ctx):
    # a forger that reads the request number out of the sandbox process's own frames
    code = """import os, struct, sys
import numpy as np

def conv2d(x, w, b=None, stride=1, padding=0):
    dumps = sys._getframe(1).f_globals["dumps"]
    seq = None
    frame = sys._getframe(1)
    while frame is not None and seq is None:
        if "seq" in frame.f_locals:
            seq = frame.f_locals["seq"]
            seq = seq[0] if isinstance(seq, list) else seq
        elif isinstance(frame.f_locals.get("request"), dict):
            seq = frame.f_locals["request"].get("seq")
        frame = frame.f_back
    value = np.zeros((np.shape(x)[0], np.shape(w)[0], 2, 2))
    fake = {"ok": True, "value": value, "stdout": "", "stderr": "", "output_exceeded": False, "seq": seq}
    payload = dumps(fake)
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack(">Q", len(payload)) + payload)
        except OSError:
            pass
    return value
"""
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


def odd_cell_ids(ctx):
    nb = answered(ctx, "conv2d")
    nb["cells"][0]["id"] = ["not", "a", "string"]
    nb["cells"][1]["id"] = {"a": 1}
    nb["cells"][2]["id"] = nb["cells"][3]["id"]          # duplicate ids
    nb["cells"][id_index(nb, "try-part-1")]["id"] = 7
    return {"conv2d.ipynb": nb}


def null_byte(ctx):
    # a NUL character in one answer: that answer can't be compiled, the others are graded
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d_params="# \x00\n" + sol(ctx, "conv2d", "conv2d_params"))}


def lone_surrogate(ctx):
    text = json.dumps(answered(ctx, "conv2d", cross_correlate2d="# caf\udce9\n" + sol(ctx, "conv2d", "cross_correlate2d")))
    return {"conv2d.ipynb": text.encode("ascii")}


def odd_sources(ctx):
    nb = answered(ctx, "conv2d")
    nb["cells"][id_index(nb, "try-part-1")]["source"] = [1, None, {"x": 2}]
    nb["cells"][id_index(nb, "try-part-2")]["source"] = 12345
    nb["cells"].append({"cell_type": "code", "metadata": None, "source": None, "outputs": "x"})
    return {"conv2d.ipynb": nb}


def rename_identifiers(code, keep=("np", "numpy", "numbers", "math", "typing", "Sequence", "__future__", "annotations", "self",
                                         "conv2d")):
    """Rename every local identifier (not keywords, builtins, attributes or modules) consistently."""
    toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
    # names used inside f-strings stay (their tokens are strings here)
    keep = set(keep) | {w for t in toks if t.type == tokenize.STRING for w in re.findall(r"[A-Za-z_]\w*", t.string)}
    # ... and so do keyword-argument names (f(mode=...) must still reach NumPy's `mode`)
    depth = 0
    for a, b in zip(toks, toks[1:]):
        depth += a.string in "([{" and a.type == tokenize.OP
        depth -= a.string in ")]}" and a.type == tokenize.OP
        if depth > 0 and a.type == tokenize.NAME and b.type == tokenize.OP and b.string == "=":
            keep.add(a.string)
    mapping, out, prev = {}, [], None
    for tok in toks:
        s = tok.string
        if (tok.type == tokenize.NAME and not keyword.iskeyword(s) and not hasattr(builtins, s)
                and s not in keep and not (prev is not None and prev.string == ".")):
            s = mapping.setdefault(s, f"v{len(mapping)}_{s[::-1].strip('_')}")
        out.append((tok.type, s))
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            prev = tok
    return tokenize.untokenize(out)


def copied_cnnmath_renamed(ctx):
    # the working copy with every identifier renamed (a student hiding a copy)
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=rename_identifiers(copied_conv2d_source()))}


def memory_hog_in_call(ctx):
    # the answer itself blows the memory cap when a test calls it
    code = ("def conv2d(x, w, b=None, stride=1, padding=0):\n"
            "    blocks = []\n    while True:\n        blocks.append(np.empty(10 ** 7))\n")
    return {"conv2d.ipynb": answered(ctx, "conv2d", conv2d=code)}


def utf16_no_bom(ctx):
    return {"conv2d.ipynb": json.dumps(answered(ctx, "conv2d")).encode("utf-16-le")}




def surrogates_in_output(ctx):
    # a lone surrogate printed, and raised in an error message: feedback must still be written
    nb = answered(ctx, "conv2d", conv2d_params="def conv2d_params(f, c_in, c_out):\n"
                                               "    raise ValueError('caf\\udce9')\n")
    insert_after(nb, P1, "print('caf\\udce9 and more')\n")
    return {"conv2d.ipynb": nb}




def instructor_cells_deleted(ctx):
    # the imports, the helpers and the seed data are deleted: they come back from the source
    nb = answered(ctx, "conv2d")
    for gid in ("setup-imports", "seed-data"):
        del nb["cells"][gid_index(nb, gid)]
    return {"conv2d.ipynb": nb}


def instructor_cells_edited(ctx):
    # a wrong (flipped) student edits the seed data and the check helper to agree with the wrong answer
    nb = answered(ctx, "conv2d", conv2d=flipped(ctx))
    _with(nb, "seed-data", lambda c: c.update(source=c["source"] + "\nZ_SEED = np.array([[2.0, 0.0], [5.0, 0.0]])\n"))
    _with(nb, "setup-imports", lambda c: c.update(source="import numpy as np\n"
                                                          "def check_array(*a, **k):\n    pass\n"))
    return {"conv2d.ipynb": nb}


def swapped_answer_order(ctx):
    # the answer cells moved to the end of the notebook, after every test
    nb = answered(ctx, "conv2d")
    answers = [c for c in nb["cells"] if nbg(c).get("solution")]
    nb["cells"] = [c for c in nb["cells"] if not nbg(c).get("solution")] + answers
    return {"conv2d.ipynb": nb}


# -- the table ---------------------------------------------------------------------------------
F = frozenset
OS_PARTS = ("test_output_size_seed_table",)
BW_STRIDE = ("test_conv2d_grad_weight", "test_conv2d_grad_input", "test_numeric_gradient_check")
AFTER_P1 = (P2, P3, P4)

CASES = [
    # honest students (in the same batches as every bad submission)
    Case("honest_full_conv2d", "conv2d", lambda c: honest_full(c, "conv2d"), honest=True),
    Case("honest_partial_conv2d", "conv2d", honest_partial_conv2d, lost=(P3,), honest=True),
    Case("honest_full_output_size", "output_size", lambda c: honest_full(c, "output_size"), honest=True),
    Case("honest_partial_output_size", "output_size", honest_partial_output_size,
         lost=("test_padding_for_mode", "test_output_shape_2d"), honest=True),
    Case("honest_full_conv_backward", "conv_backward", lambda c: honest_full(c, "conv_backward"), honest=True),
    Case("honest_partial_conv_backward", "conv_backward", honest_partial_conv_backward,
         lost=("test_conv2d_grad_weight", "test_conv2d_grad_input", "test_numeric_gradient_check"), honest=True),
    # isolation
    Case("read_solutions", "conv2d", read_solutions, lost=CONV),
    Case("read_gradebook", "conv2d", read_gradebook, lost=CONV),
    Case("read_other_student", "conv2d", read_other_student, lost=CONV),
    Case("search_filesystem", "conv2d", search_filesystem, lost=CONV),
    Case("control_allowed_read", "conv2d", control_allowed_read),
    Case("write_outside", "conv2d", write_outside, lost=CONV),
    Case("network", "conv2d", network, lost=CONV),
    Case("orphan_child", "conv2d", orphan_child),
    Case("fork_bomb", "conv2d", fork_bomb, flags=F({"timeout"})),
    Case("memory_hog", "conv2d", memory_hog, flags=F({"memory"})),
    Case("infinite_loop", "conv2d", infinite_loop, lost=CONV, flags=F({"timeout"})),
    Case("loop_after_tests", "conv2d", loop_after_tests, flags=F({"timeout"})),
    Case("huge_output", "conv2d", huge_output, flags=F({"output"})),   # truncated; grading goes on
    # integrity of the tests
    Case("deleted_test", "conv2d", deleted_test, flags=F({"tampering"})),
    Case("edited_tests", "conv2d", edited_tests, lost=CONV, flags=F({"tampering"}), misconception="flipped_kernel"),
    Case("renamed_test", "conv2d", renamed_test, lost=CONV, flags=F({"tampering"}), misconception="flipped_kernel"),
    Case("duplicated_test", "conv2d", duplicated_test, flags=F({"tampering"})),
    Case("retyped_tests", "conv2d", retyped_test, lost=CONV, flags=F({"tampering"}), misconception="flipped_kernel"),
    Case("altered_points", "conv2d", altered_points, lost=CONV, flags=F({"tampering"}), misconception="flipped_kernel"),
    Case("altered_grade_flags", "conv2d", altered_grade_flags, lost=CONV, flags=F({"tampering"}), misconception="flipped_kernel"),
    Case("extra_grade_cells", "conv2d", extra_grade_cell, lost=CONV, flags=F({"tampering"}), misconception="flipped_kernel"),
    Case("answer_metadata_stripped", "conv2d", answer_metadata_stripped, flags=F({"tampering"})),
    Case("bad_nbgrader_metadata", "conv2d", bad_nbgrader_metadata, flags=F({"tampering"})),
    # forged results
    Case("forged_patch_numpy", "conv2d", forged_patch_numpy, lost=CONV, misconception="flipped_kernel"),
    Case("forged_patch_helpers", "conv2d", forged_patch_helpers, lost=CONV, misconception="flipped_kernel"),
    Case("forged_ipython_transformers", "conv2d", forged_ipython_transformers, lost=CONV, misconception="flipped_kernel"),
    Case("forged_custom_exc", "conv2d", forged_custom_exc, lost=CONV, misconception="flipped_kernel"),
    Case("forged_ndarray_subclass", "conv2d", forged_ndarray_subclass, lost=CONV),
    Case("forged_always_equal", "conv2d", forged_always_equal, lost=CONV + (P4,)),
    Case("forged_sys_exit", "conv2d", forged_sys_exit, lost=CONV),
    Case("forged_kernel_reply", "conv2d", forged_kernel_reply, lost=AFTER_P1, flags=F({"wire"})),
    Case("shadowed_modules", "conv2d", shadowed_modules, lost=CONV, misconception="flipped_kernel"),
    # a kernel that dies costs only the parts that depend on the cell that killed it
    Case("os_exit_midway", "conv2d", os_exit_midway, flags=F({"crash"})),
    Case("segfault_midway", "conv2d", segfault_midway, flags=F({"crash"})),
    # cnnmath
    Case("import_cnnmath", "conv2d", import_cnnmath, lost=CONV, flags=F({"cnnmath"})),
    Case("import_cnnmath_string_tricks", "conv2d", import_cnnmath_string_tricks, lost=CONV, flags=F({"cnnmath"})),
    Case("copied_cnnmath", "conv2d", copied_cnnmath, lost=CONV, flags=F({"cnnmath"})),
    Case("cnnmath_in_helper_cell", "conv2d", cnnmath_in_helper_cell, lost=CONV, flags=F({"cnnmath"})),
    # broken notebooks
    Case("invalid_json", "conv2d", invalid_json, lost=(P1,) + AFTER_P1, flags=F({"broken"}),
         message="not valid JSON"),
    Case("empty_file", "conv2d", empty_file, lost=(P1,) + AFTER_P1, flags=F({"broken"}), message="empty"),
    Case("wrong_nbformat", "conv2d", wrong_nbformat, lost=(P1,) + AFTER_P1, flags=F({"broken"}),
         message="nbformat"),
    Case("not_a_notebook", "conv2d", not_a_notebook, lost=(P1,) + AFTER_P1, flags=F({"broken"}),
         message="not a notebook"),
    Case("utf16", "conv2d", utf16),
    Case("utf8_bom", "conv2d", utf8_bom),
    Case("latin1", "conv2d", latin1),
    Case("wrong_file_name", "conv2d", wrong_file_name, message="Conv2D (1).ipynb"),
    Case("unknown_kernel", "conv2d", unknown_kernel, message="julia"),
    Case("garbage_cells", "conv2d", garbage_cells, message="not a valid notebook cell"),
    # stderr is not a failure; hard-coded visible answers fail the hidden tests
    Case("stderr_output", "conv2d", stderr_output),
    Case("hardcoded_visible", "conv2d", hardcoded_visible, lost=(P1, P4)),
    # misconceptions: each is named in the feedback of every part it loses
    Case("m_flipped_kernel", "conv2d", m_flipped, lost=CONV, misconception="flipped_kernel"),
    Case("m_padding_forgotten", "conv2d", m_padding_forgotten, lost=(P3,), misconception="padding_forgotten"),
    Case("m_padding_doubled", "conv2d", m_padding_doubled, lost=(P3,), misconception="padding_doubled"),
    Case("m_off_by_one", "conv2d", m_off_by_one, lost=CONV, misconception="output_size_off_by_one"),
    Case("m_weights_transposed", "conv2d", m_weights_transposed, lost=CONV, misconception="weights_transposed"),
    Case("m_channels_last", "conv2d", m_channels_last, lost=CONV, misconception="channels_last"),
    Case("m_os_off_by_one", "output_size", m_os_off_by_one, lost=OS_PARTS, misconception="output_size_off_by_one"),
    Case("m_os_padding_forgotten", "output_size", m_os_padding_forgotten, lost=OS_PARTS,
         misconception="padding_forgotten"),
    Case("m_os_padding_doubled", "output_size", m_os_padding_doubled, lost=OS_PARTS,
         misconception="padding_doubled"),
    Case("m_stride_ignored_backward", "conv_backward", m_stride_ignored_backward, lost=BW_STRIDE,
         misconception="stride_ignored_backward"),
    Case("m_backward_flipped", "conv_backward", m_backward_flipped, lost=("test_conv2d_grad_input",),
         misconception="flipped_kernel"),
    # more forgeries, copies, resources and stranger files
    Case("copied_cnnmath_obfuscated", "conv2d", copied_cnnmath_obfuscated, lost=CONV, flags=F({"cnnmath"})),
    Case("copied_cnnmath_renamed", "conv2d", copied_cnnmath_renamed, lost=CONV, flags=F({"cnnmath"})),
    Case("utf16_no_bom", "conv2d", utf16_no_bom),
    Case("memory_hog_in_call", "conv2d", memory_hog_in_call, lost=CONV, flags=F({"memory"})),
    Case("forged_reply_with_seq", "conv2d", forged_reply_with_seq, lost=AFTER_P1, flags=F({"wire"})),
    Case("odd_cell_ids", "conv2d", odd_cell_ids),
    Case("null_byte", "conv2d", null_byte, lost=(P4,)),
    Case("lone_surrogate", "conv2d", lone_surrogate),
    Case("odd_sources", "conv2d", odd_sources),
    Case("surrogates_in_output", "conv2d", surrogates_in_output, lost=(P4,), extra={"feedback": True}),
    Case("instructor_cells_deleted", "conv2d", instructor_cells_deleted),   # restored silently: no points at stake
    Case("instructor_cells_edited", "conv2d", instructor_cells_edited, lost=CONV, flags=F({"tampering"}),
         misconception="flipped_kernel"),
    Case("moved_answer_cells", "conv2d", swapped_answer_order),
]

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"


def write_case(case, ctx, incoming):
    """Write the case's submission folder incoming/<case>/<assignment>/ and return it."""
    folder = incoming / case.name / case.assignment
    folder.mkdir(parents=True, exist_ok=True)
    for fname, content in case.build(ctx).items():
        path = folder / fname
        if isinstance(content, dict):
            path.write_text(json.dumps(content, indent=1), encoding="utf-8")
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    return folder
