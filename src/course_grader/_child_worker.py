"""The worker: the only process of the sandbox that runs the student's code (see _child.py).

It is not imported by the grader: its source follows expressions.py's and wire.py's and precedes
_child.py's in the text given to ``python -S -E -c`` inside bubblewrap. The supervisor forks it after
the imports, with its fd 1 and 2 on pipes the supervisor reads (and caps), and hands it three more
descriptors: the request pipe, the reply pipe, and the append-only report pipe on which the audit
hook below writes every attempt to import the reference library and every source compiled at run
time, at the moment it happens. Its replies carry only ``ok`` and the value, result or error; every
report field is added by the supervisor, which student code cannot reach.
"""
# The names io, json, struct, dumps, loads, read_exact come from wire.py, which precedes this text.
import ast as _ast
import builtins as _builtins
import os as _os
import signal as _signal
import sys as _sys
import traceback as _traceback

_NONCE = 16                 # bytes of the supervisor's per-request nonce, echoed first in every reply
_REPLY_CAP = 64 << 20       # bytes of one reply; a larger value is refused with an error
_COMPILED_CAP = 4 << 20     # bytes of run-time compiled source reported per request
_WATCHED = ("cnnmath", "course_grader")


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


def _write_all(fd, data, write=_os.write):
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]


def _report_hook(fd, running, emit_json=json.dumps, write=_write_all, pack=struct.pack):
    """The audit hook: report events (one length-prefixed JSON record each) as they happen.

    A record is ``{"kind": ..., "value": ...}``; the supervisor files it under the report field of
    its kind (_child.py, ``_REPORT_FIELDS``). New kinds (code fingerprints, say) are emitted here.
    """
    sent = [0]

    def emit(kind, value):
        data = emit_json({"kind": kind, "value": value}).encode()
        write(fd, pack(">Q", len(data)) + data)

    def hook(event, args):
        if event == "import" and args and isinstance(args[0], str):
            if args[0].partition(".")[0] in _WATCHED:
                emit("import", args[0][:200])
        elif event == "compile" and running[1] and args and isinstance(args[0], (bytes, str)):
            src = args[0] if isinstance(args[0], bytes) else args[0].encode("utf-8", "replace")
            if src != running[0] and sent[0] + len(src) <= _COMPILED_CAP:
                sent[0] += len(src)
                emit("compile", src.decode("utf-8", "replace"))
    hook.new_request = lambda: sent.__setitem__(0, 0)
    hook.emit = emit
    return hook


class _ImportWatch:
    """A finder first in sys.meta_path that reports (never finds) the reference library's modules:
    importlib.import_module does not raise the "import" audit event that __import__ does."""

    def __init__(self, emit):
        self.emit = emit

    def find_spec(self, name, path=None, target=None):
        if isinstance(name, str) and name.partition(".")[0] in _WATCHED:
            self.emit("import", name[:200])
        return None


def _worker_main(req_fd, rep_fd, report_fd):
    """Serve the supervisor's requests until its pipe closes (runs the student's code)."""
    for stream, fd in (("stdout", 1), ("stderr", 2)):
        raw = io.FileIO(fd, "w", closefd=False)
        setattr(_sys, stream, io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding="utf-8",
                                               errors="replace"))
    streams = (_sys.stdout, _sys.stderr)
    _sys.__stdout__, _sys.__stderr__ = streams
    proto_in = _os.fdopen(req_fd, "rb", buffering=0)
    # the student's namespace is the __main__ module, so that functions defined in cells pickle by
    # reference (multiprocessing pools fork and look them up there); the child's own names stay apart
    student_main = type(_sys)("__main__")
    _sys.modules["__main__"] = student_main
    user_ns = student_main.__dict__
    user_ns.update({"__builtins__": _builtins, "get_ipython": _FakeIPython})
    _FakeIPython.ns = user_ns
    counter = [0]
    running = [b"", False]   # the cell's own source (not reported), and whether student code is running
    hook = _report_hook(report_fd, running)
    _sys.addaudithook(hook)   # cannot be removed once added
    _sys.meta_path.insert(0, _ImportWatch(hook.emit))
    code_watch = CodeWatch()   # what runs, fingerprinted (_child_code.py, before this text)
    walk = [None]              # the graded function a call ran (its code is walked)
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)   # the supervisor stops an output flood
    interrupt = {_signal.SIGINT}

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

    def serve(request):
        op = request.get("op")
        if op == "run":
            running[0] = str(request["code"]).encode("utf-8", "replace")
            return {"ok": True, "result": run(request["code"])}
        if op == "kinds":
            return {"ok": True, "value": {name: "missing" if name not in user_ns else
                                          "callable" if callable(user_ns[name]) else "value"
                                          for name in request["names"]}}
        if op == "get":
            return {"ok": True, "value": user_ns[request["name"]]}
        if op == "call":
            walk[0] = func = user_ns[request["name"]]
            value = func(*request["args"], **request["kwargs"])
            if hasattr(value, "__next__") and hasattr(value, "__iter__"):
                value = list(value)
            return {"ok": True, "value": value}
        return {"ok": False, "error": {"ename": "ProtocolError", "evalue": str(op), "traceback": []}}

    _signal.pthread_sigmask(_signal.SIG_BLOCK, interrupt)
    while True:
        try:
            (length,) = struct.unpack(">Q", read_exact(proto_in, 8))
            frame = read_exact(proto_in, length)
        except EOFError:
            return
        nonce, request = frame[:_NONCE], loads(frame[_NONCE:])
        hook.new_request()
        _signal.sigtimedwait(interrupt, 0)    # an interrupt meant for the previous request
        try:
            _signal.pthread_sigmask(_signal.SIG_UNBLOCK, interrupt)
            running[1] = True
            msg = serve(request)
            _signal.pthread_sigmask(_signal.SIG_BLOCK, interrupt)
        except BaseException as exc:  # the student's code failed (or tried to exit)
            _signal.pthread_sigmask(_signal.SIG_BLOCK, interrupt)
            msg = {"ok": False, "error": _error_info(exc)}
        running[0], running[1] = b"", False
        try:   # every reply: the fingerprint of what ran since the last (report field "executed")
            hook.emit("executed", code_watch.report(walk[0]))
        except BaseException:
            pass
        walk[0] = None
        for stream in streams:
            try:
                stream.flush()
            except BaseException:
                pass
        try:
            payload = dumps(msg)
        except BaseException as exc:  # the student's value can't cross
            payload = dumps({"ok": False, "error": {"ename": "TypeError", "evalue":
                                                    f"the grader cannot transfer the result: {exc}"[:2000],
                                                    "traceback": []}})
        if len(payload) > _REPLY_CAP:
            payload = dumps({"ok": False, "error": {"ename": "ValueError", "evalue": "the value is too large to "
                                                    f"transfer ({len(payload)} bytes; the limit is {_REPLY_CAP})",
                                                    "traceback": []}})
        _write_all(rep_fd, struct.pack(">Q", _NONCE + len(payload)) + nonce + payload)
