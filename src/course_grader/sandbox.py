"""A bubblewrap sandbox that runs one student's code, spoken to over pipes.

The sandboxed process sees a read-only system (/usr, /lib, the Python installation with every
site-packages folder emptied, and one folder of the packages the rules allow -- never cnnmath
or course_grader), a private /proc, a minimal /dev, no network (new network namespace) and
three small tmpfs: /tmp, /dev/shm and its working directory /scratch, the only writable places.
It runs in new pid/ipc/uts namespaces and a new session, so killing it (or the grader dying:
--die-with-parent) kills every process it started. Under root it drops to an unprivileged
uid/gid of its own (see :func:`sandbox_uid`) before any student code runs. rlimits cap address
space, CPU time, processes, file size and core dumps; the grader enforces per-call and
per-notebook timeouts and an output budget.

Every sandbox also runs in a cgroup of its own (:mod:`course_grader.cgroups`): one memory
limit for all its processes that counts shared memory, memfd files and tmpfs pages, a CPU
quota so that its busy processes cannot slow a notebook graded alongside, and a process
limit; a cell's limit is measured in the sandbox's own CPU time (cpuacct) as well as in wall
clock. Only the packages the course's rules allow are mounted (:mod:`course_grader.allowed_modules`):
an import of SciPy or PyTorch fails inside with a message that states the rule. Without
cgroups the sandbox refuses to start (:class:`SandboxError`), with a one-line message.

Inside, a supervisor that runs no student code holds the pipes to the grader and reports output,
imports and compiled sources; the worker it forks runs the student's code (_child.py,
_child_worker.py). Each request carries a random nonce that the reply must echo.
"""
import multiprocessing.util
import os
import select
import signal
import struct
import subprocess
import time
from dataclasses import dataclass

from . import cgroups, wire
from .sandbox_command import SandboxError, build_command, sandbox_uid  # noqa: F401 (the sandbox's public names)

@dataclass
class Limits:
    """Per-notebook limits (all configurable on the command line)."""

    cell_timeout: float = 30.0        # seconds per student cell or per test cell
    notebook_timeout: float = 120.0   # wall-clock seconds for the whole notebook
    memory_mb: int = 1024             # memory of the sandbox (its cgroup: every process, shared memory too)
    output_bytes: int = 1_000_000     # everything the student prints, in total
    nproc: int = 64                   # processes/threads of the sandbox user (and pids.max of its cgroup)
    cpus: float = 1.0                 # CPU share of the sandbox's cgroup (cores), also its os.cpu_count()
    wall_slack: float = 2.0           # a cell may take cell_timeout CPU seconds and wall_slack times that in wall clock
    cgroup_root: str = None           # cgroup v1 mount point (default $COURSE_GRADER_CGROUP_ROOT or /sys/fs/cgroup)


CPU_POLL = 0.05        # seconds between two reads of the sandbox's CPU time while it runs
MAX_REPLY = 64 << 20   # bytes of one value from the student's process (_child_worker.py refuses larger ones)
REPLY_FIELDS = ("ok", "value", "result", "error")   # all the worker says; the rest is the supervisor's report


def _bounded(reply):
    """The worker's reply with its texts cut to what a notebook shows (the worker is not trusted to)."""
    if "result" in reply:
        reply["result"] = None if reply["result"] is None else str(reply["result"])[:10000]
    error = reply.get("error")
    if "error" in reply:
        error = error if isinstance(error, dict) else {}
        tb = error.get("traceback")
        reply["error"] = {"ename": str(error.get("ename", "Error"))[:200], "evalue": str(error.get("evalue", ""))[:2000],
                          "traceback": [str(t)[:4000] for t in tb[:60]] if isinstance(tb, list) else []}
    return reply


class _LimitReached(Exception):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind  # "wall" or "cpu"


class SandboxDied(Exception):
    """The sandboxed process is gone (crashed, killed, or over a limit)."""

    def __init__(self, reason, flag, starved=False):
        super().__init__(reason)
        self.reason = reason
        self.flag = flag  # "timeout", "crash", "memory", "output"
        # a wall-clock timeout while the sandbox had used less CPU time than its limit: the machine
        # was busy (worth regrading alone)
        self.starved = starved


MEMORY_EXCEEDED = ("memory limit exceeded (counting shared memory): the notebook's processes, shared memory "
                   "and temporary files went over {mb} MB")


def open_cgroup(limits):
    """The cgroup of one sandbox run, from its limits; raises :class:`SandboxError` without cgroups."""
    try:
        return cgroups.SandboxCgroup(memory_bytes=int(limits.memory_mb) << 20, cpus=limits.cpus,
                                     pids=limits.nproc, root=limits.cgroup_root)
    except cgroups.CgroupError as exc:
        raise SandboxError(f"per-sandbox cgroup limits are unavailable: {exc}") from None


class Sandbox:
    """One sandboxed Python process holding one student's namespace."""

    def __init__(self, limits, deadline=None):
        self.limits = limits
        self.deadline = deadline if deadline is not None else time.monotonic() + limits.notebook_timeout
        self.dead = None
        self.proc = None
        self._buf = b""
        self.trusted_seconds = 0.0   # spent here decoding the student's replies
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        command = build_command(limits)
        self.cgroup = open_cgroup(limits)
        # a sandbox never closed (a pool worker's spare when the worker exits): its cgroup is still
        # emptied and removed when it is garbage-collected or the process exits
        multiprocessing.util.Finalize(self, self.cgroup.close, exitpriority=10)
        try:
            # a new session (killpg reaches everything bwrap starts); SIGPIPE restored by restore_signals
            self.proc = subprocess.Popen(self.cgroup.wrap(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, start_new_session=True, close_fds=True)
        except OSError as exc:
            self.cgroup.close()
            raise SandboxError(f"cannot start bubblewrap: {exc}") from None

    def usage(self):
        """The sandbox's CPU seconds, peak memory and OOM kills so far (a plain dict; kept after close)."""
        return self.cgroup.usage()

    # -- low level -------------------------------------------------------------------
    def _fail(self, reason, flag):
        self.dead = SandboxDied(reason, flag)
        self.close()
        raise self.dead

    def _read_exact(self, n, until, cpu_until):
        fd = self.proc.stdout.fileno()
        while len(self._buf) < n:
            remaining = until - time.monotonic()
            if remaining <= 0:
                raise _LimitReached("wall")
            if self.cgroup.cpu_seconds() > cpu_until:
                raise _LimitReached("cpu")
            ready, _, _ = select.select([fd], [], [], min(remaining, CPU_POLL))
            if not ready:
                continue
            chunk = os.read(fd, max(65536, n - len(self._buf)))
            if not chunk:
                raise EOFError
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _read_frame(self, cap, until, cpu_until, what):
        (length,) = struct.unpack(">Q", self._read_exact(8, until, cpu_until))
        if length > cap:
            self._fail(f"the sandbox sent an oversized {what} ({length} bytes, limit {cap})", "crash")
        return self._read_exact(length, until + 5.0, cpu_until + 5.0)

    def _check_unasked(self):
        """Nothing may arrive from the sandbox between a reply and the next request."""
        fd = self.proc.stdout.fileno()
        if self._buf or select.select([fd], [], [], 0)[0] and self._peek(fd):
            self._fail("the sandbox wrote a reply the grader did not ask for", "wire")

    def _peek(self, fd):
        chunk = os.read(fd, 65536)
        self._buf += chunk
        return bool(chunk)

    def _decode(self, body, what):
        try:
            value = wire.loads(body)
        except wire.WireError as exc:
            self._fail(f"the student's process sent a malformed {what} ({exc})", "crash")
        if not isinstance(value, dict):
            self._fail(f"the student's process sent a malformed {what}", "crash")
        return value

    def request(self, message, timeout):
        """Send one request and wait for its reply.

        The sandbox may use ``timeout`` seconds of CPU time (all its processes, from its cgroup)
        and ``wall_slack`` times that in wall clock, within the notebook's wall-clock deadline.
        The reply is the worker's ``ok`` and value, result or error, with the supervisor's report
        (output, imports, compiled sources) beside them; it must echo the request's random nonce,
        and any reply the grader did not ask for stops the sandbox (flag ``wire``). Decoding is
        linear in the reply's size (at most :data:`MAX_REPLY` bytes), and its time is counted in
        :attr:`trusted_seconds` (and in the notebook's wall clock).
        """
        if self.dead is not None:
            raise self.dead
        nonce = os.urandom(16).hex()
        message = dict(message, nonce=nonce)
        now = time.monotonic()
        wall = timeout * max(1.0, float(self.limits.wall_slack))
        until = min(now + wall, self.deadline)
        which = "notebook" if self.deadline <= now + wall else "cell"
        cpu_start = self.cgroup.cpu_seconds()
        cpu_until = cpu_start + timeout
        hits = self.cgroup.limit_hits()
        report_cap = 6 * int(self.limits.output_bytes) + (32 << 20)
        try:
            self._check_unasked()
            wire.write_message(self.proc.stdin, message)
            report_body = self._read_frame(report_cap, until, cpu_until, "report")
            payload_body = self._read_frame(MAX_REPLY + 64, until, cpu_until, "reply")
        except _LimitReached as limit:
            self._timeout(which if limit.kind == "wall" else "cpu", self.cgroup.cpu_seconds() - cpu_start,
                          timeout)
        except (EOFError, BrokenPipeError, OSError):
            self._died()
        self._check_memory()
        started = time.monotonic()
        report = self._decode(report_body, "report")
        try:
            payload = wire.loads(payload_body)
        except wire.WireError as exc:   # a value the grader will not read (the sandbox goes on)
            payload = {"ok": False, "error": {"ename": "ValueError", "evalue": f"the grader cannot read the "
                                              f"value: {exc}", "traceback": []}}
        if not isinstance(payload, dict):
            self._fail("the student's process sent a malformed reply", "crash")
        self.trusted_seconds += time.monotonic() - started
        if report.get("nonce") != nonce:
            self._fail("the sandbox sent a reply that does not answer the grader's request", "wire")
        if report.get("wire"):
            problems = "; ".join(str(p) for p in list(report["wire"])[:5])
            self._fail(f"the student's code tampered with the sandbox's channels: {problems}", "wire")
        reply = _bounded({key: payload[key] for key in REPLY_FIELDS if key in payload})
        reply.update((key, value) for key, value in report.items() if key not in REPLY_FIELDS)
        reply["output_exceeded"] = bool(report.get("output_dropped"))
        reply["memory_limit_hits"] = self.cgroup.limit_hits() - hits   # read here, from the cgroup
        return reply

    def _check_memory(self):
        """Any process of the sandbox killed at the cgroup's memory limit ends the notebook."""
        if self.cgroup.oom_kills() > 0:
            self._fail(MEMORY_EXCEEDED.format(mb=self.limits.memory_mb), "memory")

    def _timeout(self, which, cpu_used, cpu_limit):
        self._check_memory()
        starved = which != "cpu" and cpu_used < cpu_limit
        if which == "notebook":
            self.dead = SandboxDied(f"the notebook exceeded its wall-clock limit of "
                                    f"{self.limits.notebook_timeout:g} s", "timeout", starved)
        elif which == "cpu":
            self.dead = SandboxDied(f"a cell exceeded its CPU time limit of {self.limits.cell_timeout:g} s "
                                    "(counting every process it started)", "timeout")
        else:
            wall = self.limits.cell_timeout * max(1.0, float(self.limits.wall_slack))
            self.dead = SandboxDied(f"a cell exceeded the wall-clock limit of {wall:g} s "
                                    f"(having used {cpu_used:.1f} s of CPU time)", "timeout", starved)
        self.close()
        raise self.dead

    def _died(self):
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self._check_memory()
        err = b""
        try:
            err = self.proc.stderr.read(4000) or b""
        except Exception:
            pass
        rc = self.proc.returncode
        if rc == cgroups.JOIN_FAILED:
            self._fail("the sandbox could not join its cgroup", "crash")
        if rc is not None and rc < 0 and -rc == signal.SIGXCPU:
            self._fail("the student's code exceeded its CPU time limit", "timeout")
        if b"MemoryError" in err:
            self._fail("the student's code ran out of memory "
                       f"(limit {self.limits.memory_mb} MB)", "memory")
        detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        self._fail("the student's kernel died" + (f" (exit status {rc})" if rc is not None else "")
                   + (f": {detail[0][:300]}" if detail else ""), "crash")

    def close(self):
        """Kill every process of the sandbox, keep its final usage, remove its cgroup (idempotent)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        self.cgroup.close()
        if proc is None:
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except Exception:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- operations --------------------------------------------------------------------
    def run_cell(self, code, timeout=None):
        return self.request({"op": "run", "code": code}, timeout or self.limits.cell_timeout)

    def kinds(self, names, timeout=10.0):
        return self.request({"op": "kinds", "names": list(names)}, timeout)

    def get(self, name, timeout=10.0):
        return self.request({"op": "get", "name": name}, timeout)

    def call(self, name, args, kwargs, timeout):
        return self.request({"op": "call", "name": name, "args": tuple(args), "kwargs": dict(kwargs)}, timeout)
