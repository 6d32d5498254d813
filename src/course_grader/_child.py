"""The supervisor: the sandbox's first process, which holds the wire and runs no student code.

It is not imported by the grader: its source (after expressions.py's, wire.py's and
_child_worker.py's) is passed to ``python -S -E -c`` inside bubblewrap. After the imports it forks
the worker (_child_worker.py), the one process that runs the student's code, and relays the
grader's requests to it. Everything the grader learns about a request besides the value comes from
here, where student code cannot reach it:

* the output: the worker's fd 1 and 2 are pipes read here; at most the notebook's output budget is
  kept, the rest is drained, counted and dropped (``output_dropped``); a flood far past the budget
  interrupts the cell (SIGINT, ``output_stopped``);
* the report pipe: imports of the reference library and run-time compiled sources, written by the
  worker's audit hook as they happen (``forbidden_imports``, ``compiled``);
* ``wire``: what the worker did that the grader did not ask for -- bytes on the reply pipe before
  a request or after its reply, replies with the wrong nonce, malformed reports, fds 1/2 or the
  reply/report pipes closed or replaced (checked through /proc after every request).

A reply to the grader is two frames: the report (a dict, with the grader's nonce) and the worker's
payload, forwarded as it came. The supervisor is not dumpable, so the worker (same uid) cannot
open its descriptors through /proc or ptrace it.
"""
# wire.py (dumps, loads, read_exact, struct, json), _child_code.py (CodeWatch) and _child_worker.py
# (_worker_main, _NONCE) precede this.
import ctypes as _ctypes
import os as _os
import select as _select
import signal as _signal
import sys as _sys

_REPORT_CAP = 8 << 20        # bytes of report records kept per request (the rest is counted, flagged)
_FLOOD = 64 << 20            # bytes dropped past the output budget before the cell is interrupted
# report-pipe record kind -> the report field it is filed under, and how many records are kept (a list;
# 0: one value, the last, None if none came)
_REPORT_FIELDS = {"import": ("forbidden_imports", 20), "compile": ("compiled", 200), "executed": ("executed", 0)}
_PR_SET_DUMPABLE = 4
_FD_CHECK = 0.25             # seconds between two checks of the worker's descriptors while it runs


def _set_dumpable(flag):
    try:
        _ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, int(flag), 0, 0, 0)
    except (OSError, AttributeError):
        pass


class _Output:
    """The notebook's output budget, shared by stdout and stderr (kept here, out of student reach)."""

    def __init__(self, budget):
        self.left = budget
        self.parts = {"stdout": [], "stderr": []}
        self.dropped = 0
        self.tail = b""   # the last of stderr, kept or not (told to the grader if the worker dies)

    def add(self, name, data):
        if name == "stderr":
            self.tail = (self.tail + data)[-4000:]
        keep = data[:max(self.left, 0)]
        self.left -= len(keep)
        self.dropped += len(data) - len(keep)
        if keep:
            self.parts[name].append(keep)

    def take(self):
        out = {name: b"".join(p).decode("utf-8", "replace") for name, p in self.parts.items()}
        out["output_dropped"], self.dropped = self.dropped, 0
        self.parts = {"stdout": [], "stderr": []}
        return out


class _Reports:
    """Length-prefixed JSON records from the worker's report pipe, filed by kind."""

    def __init__(self):
        self.buf = bytearray()
        self.fields = {}
        self.size = 0
        self.problems = []

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 8:
            (n,) = struct.unpack(">Q", self.buf[:8])
            if n > _REPORT_CAP:
                self.problems.append("an oversized record on the report pipe")
                self.buf.clear()
                return
            if len(self.buf) < 8 + n:
                return
            record, self.buf = bytes(self.buf[8:8 + n]), self.buf[8 + n:]
            self.size += n
            try:
                record = json.loads(record)
                field, keep = _REPORT_FIELDS[record["kind"]]
                value = record["value"]
            except Exception:
                self.problems.append("a malformed record on the report pipe")
                continue
            if not keep:
                self.fields[field] = value
                continue
            kept = self.fields.setdefault(field, [])
            if len(kept) < keep and self.size <= _REPORT_CAP:
                kept.append(value)

    def take(self):
        out = {field: [] if keep else None for field, keep in _REPORT_FIELDS.values()}
        out.update(self.fields)
        problems = list(self.problems)
        if self.buf:
            problems.append("an incomplete record on the report pipe")
        self.buf, self.fields, self.size, self.problems = bytearray(), {}, 0, []
        return out, problems


def _pipe_name(fd):
    return f"pipe:[{_os.fstat(fd).st_ino}]"


class _Supervisor:
    def __init__(self, budget):
        self.proto_in = _os.fdopen(_os.dup(0), "rb", buffering=0)
        self.proto_out = _os.dup(1)
        self.own_err = _os.dup(2)
        devnull = _os.open("/dev/null", _os.O_RDWR)
        for fd in (0, 1, 2):
            _os.dup2(devnull, fd)
        _os.close(devnull)
        req_r, self.req_w = _os.pipe()
        self.rep_r, rep_w = _os.pipe()
        self.out_r, out_w = _os.pipe()
        self.err_r, err_w = _os.pipe()
        self.rpt_r, rpt_w = _os.pipe()
        self.output = _Output(budget)
        self.reports = _Reports()
        self.pid = _os.fork()
        if self.pid == 0:   # the worker
            for fd in (self.proto_out, self.own_err, self.req_w, self.rep_r, self.out_r, self.err_r, self.rpt_r,
                       self.proto_in.fileno()):
                _os.close(fd)
            _os.dup2(out_w, 1)
            _os.dup2(err_w, 2)
            _os.close(out_w)
            _os.close(err_w)
            _set_dumpable(True)   # so that the supervisor (same uid) can read its /proc/<pid>/fd
            try:
                _worker_main(req_r, rep_w, rpt_w)
            finally:
                _os._exit(0)
        for fd in (req_r, rep_w, out_w, err_w, rpt_w):
            _os.close(fd)
        _set_dumpable(False)
        self.pidfd = _os.pidfd_open(self.pid)
        self.expected = {1: _pipe_name(self.out_r), 2: _pipe_name(self.err_r), rep_w: _pipe_name(self.rep_r),
                         rpt_w: _pipe_name(self.rpt_r)}
        self.names = {self.out_r: "stdout", self.err_r: "stderr"}
        _os.set_blocking(self.req_w, False)
        self.live = [self.out_r, self.err_r, self.rpt_r, self.rep_r]

    # -- reading the worker ---------------------------------------------------------------
    def _pump(self, fd, reply):
        """Read what one readable fd has: False at its end (or when the worker is gone)."""
        if fd == self.pidfd:
            return False
        try:
            data = _os.read(fd, 1 << 16)
        except OSError:
            data = b""
        if fd in self.names:
            self.output.add(self.names[fd], data)
        elif fd == self.rpt_r:
            self.reports.feed(data)
        elif fd == self.rep_r:
            reply.feed(data)
        return bool(data)

    def _drain(self, reply):
        """Whatever the worker's pipes hold right now (the output written just before its reply)."""
        fds = list(self.live)
        while fds:
            ready, _, _ = _select.select(fds, [], [], 0)
            if not ready:
                return
            for fd in ready:
                if not self._pump(fd, reply):
                    fds.remove(fd)

    def _died(self):
        self._drain(_Reply(b""))
        err = self.output.tail
        try:
            _os.write(self.own_err, err)
        except OSError:
            pass
        _, status = _os.waitpid(self.pid, 0)
        if _os.WIFSIGNALED(status):
            sig = _os.WTERMSIG(status)
            _signal.signal(sig, _signal.SIG_DFL)
            _os.kill(_os.getpid(), sig)
        _os._exit(_os.waitstatus_to_exitcode(status) if _os.WIFEXITED(status) else 1)

    def _tampered_fds(self):
        found = []
        for fd, name in self.expected.items():
            try:
                now = _os.readlink(f"/proc/{self.pid}/fd/{fd}")
            except OSError:
                now = "closed"
            if now != name:
                found.append(f"the worker's fd {fd} was {'closed' if now == 'closed' else 'replaced'}")
        return found

    # -- one request ----------------------------------------------------------------------
    def handle(self, request):
        wire_problems = []
        stale = _Reply(b"")
        self._drain(stale)
        if stale.buf or stale.frames:
            wire_problems.append("a reply the grader did not ask for (written ahead of time: "
                                 f"{len(stale.buf) + stale.frame_bytes} bytes before the request)")
        nonce = _os.urandom(_NONCE)
        body = dumps({k: v for k, v in request.items() if k != "nonce"})
        pending = memoryview(struct.pack(">Q", _NONCE + len(body)) + nonce + body)
        reply = _Reply(nonce)
        stopped = False
        while reply.payload is None:
            wfds = [self.req_w] if pending else []
            ready, writable, _ = _select.select(self.live + [self.pidfd], wfds, [], _FD_CHECK)
            if not ready and not writable:
                tampered = self._tampered_fds()
                if tampered:    # the reply can no longer reach here: answer now
                    reply.fail("; ".join(tampered))
                    break
            if writable:
                try:
                    pending = pending[_os.write(self.req_w, pending):]
                except BlockingIOError:
                    pass
            for fd in ready:
                if self._pump(fd, reply):
                    continue
                if fd != self.pidfd:    # every write end of this pipe is closed (the fd check reports it)
                    self.live.remove(fd)
                    continue
                self._drain(reply)      # the worker exited
                if reply.payload is None:
                    self._died()
            if not stopped and self.output.dropped > _FLOOD:
                stopped = True
                _os.kill(self.pid, _signal.SIGINT)
        self._drain(reply)
        wire_problems += reply.problems
        if reply.buf or reply.extra:
            wire_problems.append("a reply the grader did not ask for (more bytes after the reply)")
        wire_problems += self._tampered_fds()
        report = self.output.take()
        fields, problems = self.reports.take()
        report.update(fields)
        report.update(nonce=request.get("nonce"), output_stopped=stopped, reply_bytes=reply.size,
                      output_left=max(self.output.left, 0),
                      wire=wire_problems + problems)
        head = dumps(report)
        payload = reply.payload
        out = memoryview(struct.pack(">Q", len(head)) + head + struct.pack(">Q", len(payload)) + payload)
        while out:
            out = out[_os.write(self.proto_out, out):]

    def serve(self):
        while True:
            try:
                (length,) = struct.unpack(">Q", read_exact(self.proto_in, 8))
                request = loads(read_exact(self.proto_in, length))
            except EOFError:
                return
            self.handle(request)


class _Reply:
    """The worker's reply to one request: [8-byte length][nonce][payload], read incrementally.

    A reply with another nonce (written ahead of time, or forged) is counted and skipped; a length
    over the cap (the worker refuses larger values itself) ends the request as malformed.
    """

    def __init__(self, nonce):
        self.nonce = nonce
        self.buf = bytearray()
        self.payload = None
        self.problems = []
        self.frames = 0
        self.frame_bytes = 0
        self.extra = 0
        self.size = 0

    def fail(self, problem):
        self.problems.append(problem)
        self.payload = dumps({"ok": False, "error": {"ename": "RuntimeError", "evalue": problem, "traceback": []}})

    def feed(self, data):
        if self.payload is not None:
            self.extra += len(data)
            return
        self.buf += data
        while self.payload is None and len(self.buf) >= 8:
            (n,) = struct.unpack(">Q", self.buf[:8])
            if n > _REPLY_CAP + _NONCE or n < _NONCE:
                self.buf.clear()
                if self.nonce:
                    self.fail(f"a malformed reply the grader did not ask for (length {n})")
                else:
                    self.frames += 1
                return
            if len(self.buf) < 8 + n:
                return
            frame, self.buf = bytes(self.buf[8:8 + n]), self.buf[8 + n:]
            self.frames += 1
            self.frame_bytes += 8 + n
            if self.nonce and frame[:_NONCE] == self.nonce:
                self.payload, self.size = frame[_NONCE:], n
            elif self.nonce:
                self.problems.append("a reply the grader did not ask for (wrong nonce)")
        if self.payload is not None and self.buf:
            self.extra += len(self.buf)
            self.buf.clear()


_Supervisor(int(_sys.argv[1])).serve()
