"""The process that runs inside the sandbox and executes the student's code.

It is not imported by the grader: its source (after wire.py's) is passed to
``python -S -E -c`` inside bubblewrap, so it sees only the standard library and the
read-only site-packages (without cnnmath or course_grader). It reads requests from stdin
and answers on the original stdout; everything the student prints is captured per request
and capped. Whatever it answers is treated as untrusted plain data by the grader.
"""
# The names io, json, struct, np, dumps, loads, write_message, read_exact, WireError come
# from wire.py, which precedes this text in the sandbox.
import ast as _ast
import builtins as _builtins
import os as _os
import sys as _sys
import traceback as _traceback


class _OutputLimit(BaseException):
    pass


class _CappedWriter:
    """A text stream that keeps what is written, up to the notebook's output budget."""

    def __init__(self, name, budget):
        self.name = name
        self.budget = budget
        self.parts = []
        self.exceeded = False
        self.encoding = "utf-8"
        self.errors = "replace"

    def write(self, text):
        if not isinstance(text, str):
            text = str(text)
        size = len(text.encode("utf-8", "replace"))
        if size > self.budget[0]:
            self.parts.append(text[: max(self.budget[0], 0)])
            self.budget[0] = 0
            self.exceeded = True
            raise _OutputLimit("output size limit exceeded")
        self.budget[0] -= size
        self.parts.append(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def writable(self):
        return True

    def take(self):
        text = "".join(self.parts)
        self.parts = []
        return text


class _FakeIPython:
    """get_ipython() for notebook magics: they do nothing in the sandbox, except that the body
    of a %%time / %%timeit / %%capture cell still runs (once), as it would in Jupyter."""

    ns = None

    def run_line_magic(self, *args, **kwargs):
        return None

    def run_cell_magic(self, magic=None, line="", cell="", *args, **kwargs):
        if magic in ("time", "timeit", "capture") and isinstance(cell, str) and _FakeIPython.ns is not None:
            exec(compile(cell, "<cell magic>", "exec"), _FakeIPython.ns)
        return None

    def system(self, *args, **kwargs):
        return None

    def getoutput(self, *args, **kwargs):
        return []

    def __getattr__(self, name):
        return lambda *a, **k: None


def _student_traceback(exc):
    """Traceback lines that belong to the student's cells only."""
    frames = [f for f in _traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    lines = _traceback.format_list(frames)
    return ["Traceback (most recent call last):\n"] + lines + _traceback.format_exception_only(type(exc), exc)


def _error_info(exc):
    try:
        evalue = str(exc)
    except BaseException:
        evalue = "<unprintable exception>"
    try:
        tb = _student_traceback(exc)
    except BaseException:
        tb = []
    ename = type(exc).__name__ if isinstance(type(exc).__name__, str) else "Exception"
    return {"ename": ename, "evalue": evalue[:2000], "traceback": [t[:4000] for t in tb[:60]]}


def _main():
    proto_in = _os.fdopen(_os.dup(0), "rb", buffering=0)
    proto_out = _os.fdopen(_os.dup(1), "wb", buffering=0)
    devnull = _os.open("/dev/null", _os.O_RDWR)
    for fd in (0, 1, 2):
        _os.dup2(devnull, fd)
    budget = [int(_sys.argv[1])]
    out = _CappedWriter("stdout", budget)
    err = _CappedWriter("stderr", budget)
    _sys.stdout, _sys.stderr = out, err
    # the student's namespace is the __main__ module, so that functions defined in cells pickle by
    # reference (multiprocessing pools fork and look them up there); the child's own names stay apart
    student_main = type(_sys)("__main__")
    _sys.modules["__main__"] = student_main
    user_ns = student_main.__dict__
    user_ns.update({"__builtins__": _builtins, "get_ipython": _FakeIPython})
    _FakeIPython.ns = user_ns
    counter = [0]
    seq = [None]          # the grader's request number, echoed in the reply (forged replies don't match)
    memory_hit = [False]  # a MemoryError: the memory cap was reached
    forbidden = []        # attempts to import the reference library, however the name was spelled

    class _ImportWatch:
        def find_spec(self, name, path=None, target=None):
            if isinstance(name, str) and name.split(".")[0] in ("cnnmath", "course_grader"):
                forbidden.append(name)
            return None

    _sys.meta_path.insert(0, _ImportWatch())
    # source the student compiles at run time (exec of decoded or generated code): the grader checks it
    # for copies of cnnmath like the cells themselves. An audit hook cannot be removed once added.
    compiled = []
    running = [b""]

    def _audit(event, args):
        if event == "compile" and args and isinstance(args[0], (bytes, str)):
            src = args[0] if isinstance(args[0], bytes) else args[0].encode("utf-8", "replace")
            if src != running[0] and sum(len(c) for c in compiled) + len(src) <= (4 << 20):
                compiled.append(src.decode("utf-8", "replace"))

    _sys.addaudithook(_audit)
    code_watch = CodeWatch()  # what runs, fingerprinted (_child_code.py, before this text)

    def answer(msg):
        msg["executed"] = code_watch.report(msg.pop("walk", None))  # every reply: what ran since the last
        msg["stdout"] = out.take()
        msg["stderr"] = err.take()
        msg["output_exceeded"] = out.exceeded or err.exceeded
        msg["seq"] = seq[0]
        msg["memory_exceeded"] = memory_hit[0]
        msg["forbidden_imports"] = forbidden[:20]
        forbidden[:] = []
        msg["compiled"] = compiled[:]
        compiled[:] = []
        try:
            payload = dumps(msg)
        except BaseException as exc:  # the student's value can't cross
            value_error = {"ename": "TypeError", "evalue": f"the grader cannot transfer the result: {exc}",
                           "traceback": []}
            plain = {k: v for k, v in msg.items() if k not in ("result", "value")}
            payload = dumps(dict(plain, ok=False, error=value_error))
        proto_out.write(struct.pack(">Q", len(payload)) + payload)

    def run(code):
        counter[0] += 1
        tree = compile(code, f"<cell {counter[0]}>", "exec", _ast.PyCF_ONLY_AST)
        last = None
        if tree.body and isinstance(tree.body[-1], _ast.Expr):
            last = _ast.Expression(tree.body.pop().value)
        exec(compile(tree, f"<cell {counter[0]}>", "exec"), user_ns)
        if last is not None:
            value = eval(compile(last, f"<cell {counter[0]}>", "eval"), user_ns)
            if value is not None:
                return repr(value)[:10000]
        return None

    while True:
        try:
            (length,) = struct.unpack(">Q", read_exact(proto_in, 8))
            request = loads(read_exact(proto_in, length))
        except EOFError:
            return
        seq[0] = request.get("seq")
        op = request.get("op")
        try:
            if op == "run":
                running[0] = str(request["code"]).encode("utf-8", "replace")
                result = run(request["code"])
                answer({"ok": True, "result": result})
            elif op == "kinds":
                kinds = {}
                for name in request["names"]:
                    if name not in user_ns:
                        kinds[name] = "missing"
                    elif callable(user_ns[name]):
                        kinds[name] = "callable"
                    else:
                        kinds[name] = "value"
                answer({"ok": True, "value": kinds})
            elif op == "get":
                answer({"ok": True, "value": user_ns[request["name"]]})
            elif op == "call":
                func = user_ns[request["name"]]
                value = func(*request["args"], **request["kwargs"])
                if hasattr(value, "__next__") and hasattr(value, "__iter__"):
                    value = list(value)
                answer({"ok": True, "value": value, "walk": func})
            else:
                answer({"ok": False, "error": {"ename": "ProtocolError", "evalue": str(op), "traceback": []}})
        except BaseException as exc:  # the student's code failed (or tried to exit)
            if isinstance(exc, MemoryError):
                memory_hit[0] = True
            if isinstance(exc, ImportError) and str(getattr(exc, "name", "") or "").split(".")[0] == "cnnmath":
                forbidden.append(exc.name)
            answer({"ok": False, "error": _error_info(exc)})


_main()
