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
"""
import functools
import json
import multiprocessing.util
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

from . import allowed_modules, cgroups, wire

HERE = os.path.dirname(os.path.abspath(__file__))
NOBODY = 65534


def sandbox_uid():
    """The uid a sandbox runs as under root: one per live sandbox, used by nothing else.

    RLIMIT_NPROC counts the processes of a uid machine-wide, so sandboxes sharing one uid
    (nobody) would let one student's fork bomb stop another student's threads. A grading worker
    runs one sandbox at a time and its pid is unique among live processes.
    """
    return 1_000_000 + os.getpid() % 1_000_000


@dataclass
class Limits:
    """Per-notebook limits (all configurable on the command line)."""

    cell_timeout: float = 30.0        # seconds per student cell or per test cell
    notebook_timeout: float = 120.0   # wall-clock seconds for the whole notebook
    memory_mb: int = 1024             # address space of the sandboxed process
    output_bytes: int = 1_000_000     # everything the student prints, in total
    nproc: int = 64                   # processes/threads of the sandbox user (and pids.max of its cgroup)
    cpus: float = 1.0                 # CPU share of the sandbox's cgroup (cores), also its os.cpu_count()
    wall_slack: float = 2.0           # a cell may take cell_timeout CPU seconds and wall_slack times that in wall clock
    cgroup_root: str = None           # cgroup v1 mount point (default $COURSE_GRADER_CGROUP_ROOT or /sys/fs/cgroup)


CPU_POLL = 0.05
MAX_REPLY = 64 << 20   # bytes of one value from the student's process (_child.py refuses larger ones)
REPLY_FIELDS = ("ok", "value", "result", "error")   # all the worker says; the rest is the supervisor's report  # seconds between two reads of the sandbox's CPU time while it runs


class _LimitReached(Exception):
    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind  # "wall" or "cpu"


class SandboxError(Exception):
    """The sandbox could not be started."""


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


@functools.lru_cache(maxsize=None)
def _child_source():
    """expressions.py, wire.py, _child_worker.py then _child.py (read once per process, not once per sandbox)."""
    parts = []
    for name in ("expressions.py", "wire.py", "_child_worker.py", "_child.py"):
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


_PRELUDE = r'''
import os, sys, resource, json
_cfg = json.loads(sys.argv.pop(2))
for _p in _cfg["site"]:
    sys.path.append(_p)
_banned, _unavailable = _cfg["banned"], _cfg["unavailable"]
''' + allowed_modules.FINDER_SOURCE + r'''
del _banned, _unavailable
os.cpu_count = (lambda _n=_cfg["cpus"]: _n)  # the sandbox's CPU share, so pools default to a size that fits
def _fork(_fork=os.fork, _n=_cfg["nproc"]):
    try:
        return _fork()
    except BlockingIOError as exc:  # say which limit, instead of "Resource temporarily unavailable"
        raise BlockingIOError(exc.errno, f"cannot start another process: the grading sandbox allows {_n} "
                              "processes and threads in all") from None
os.fork = _fork
del _fork
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_FSIZE, (_cfg["fsize"], _cfg["fsize"]))
resource.setrlimit(resource.RLIMIT_CPU, (_cfg["cpu"], _cfg["cpu"]))
if os.getuid() == 0:
    os.setgroups([])
    os.setgid(_cfg["uid"])
    os.setuid(_cfg["uid"])
resource.setrlimit(resource.RLIMIT_NPROC, (_cfg["nproc"], _cfg["nproc"]))
import numpy
resource.setrlimit(resource.RLIMIT_AS, (_cfg["memory"], _cfg["memory"]))
del _cfg, _p
'''


def bwrap_path():
    path = shutil.which("bwrap")
    if not path:
        raise SandboxError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    return path


def _dirs_to(path, made):
    """--dir arguments (mode 0755) for every ancestor of path not yet created."""
    args = []
    parts = os.path.abspath(path).strip("/").split("/")[:-1]
    cur = ""
    for part in parts:
        cur += "/" + part
        if cur not in made:
            made.add(cur)
            args += ["--perms", "0755", "--dir", cur]
    return args


SITE = "/grader/site"


def _under(path, roots):
    return any(path == r or path.startswith(r + "/") for r in roots)


def build_command(limits):
    """The bwrap command line (a list) for one sandboxed student process.

    It does not join a cgroup: :class:`Sandbox` runs it behind :meth:`SandboxCgroup.wrap`.
    """
    python = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    args = [bwrap_path()]
    system = [d for d in ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin") if os.path.exists(d)]
    for d in system:
        args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
              "/etc/alternatives", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    made = {"/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin", "/etc"}
    mounted = list(system)
    if not _under(prefix, mounted):
        args += _dirs_to(prefix, made) + ["--ro-bind", prefix, prefix]
        mounted.append(prefix)
    # every package folder of every mounted Python installation: an empty read-only folder
    for hidden in allowed_modules.hidden_package_dirs(allowed_modules.interpreter_prefixes()):
        if _under(os.path.realpath(hidden), mounted):
            args += ["--perms", "0555", "--tmpfs", hidden, "--remount-ro", hidden]
    # ... and only the allowed packages, one mount each, in one folder on sys.path
    args += _dirs_to(SITE + "/x", made) + ["--perms", "0555", "--tmpfs", SITE]
    for source, name in allowed_modules.package_view():
        args += ["--ro-bind", source, f"{SITE}/{name}"]
    args += ["--remount-ro", SITE]
    memory = int(limits.memory_mb) << 20
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "01777", "--size", str(64 << 20), "--tmpfs", "/tmp",
             "--perms", "01777", "--size", str(64 << 20), "--tmpfs", "/scratch",
             # POSIX shared memory and semaphores (multiprocessing): counted by the cgroup's memory limit
             "--perms", "01777", "--size", str(memory), "--tmpfs", "/dev/shm",
             "--chdir", "/scratch",
             "--setenv", "HOME", "/scratch", "--setenv", "TMPDIR", "/tmp",
             "--setenv", "OPENBLAS_NUM_THREADS", "1", "--setenv", "OMP_NUM_THREADS", "1",
             "--setenv", "MKL_NUM_THREADS", "1", "--setenv", "PYTHONHASHSEED", "0",
             "--setenv", "MPLBACKEND", "Agg", "--unsetenv", "PYTHONPATH",
             "--setenv", "USER", "student", "--setenv", "LOGNAME", "student",
             "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        # privileged bwrap: drop every capability except the two needed to become nobody
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    cfg = {"site": [SITE], "memory": memory, "nproc": int(limits.nproc),
           "cpu": int(limits.notebook_timeout) + 5, "fsize": 32 << 20, "uid": sandbox_uid(),
           "cpus": max(1, int(float(limits.cpus))), "banned": allowed_modules.BANNED,
           "unavailable": allowed_modules.UNAVAILABLE}
    code = _PRELUDE + _child_source()
    args += [python, "-S", "-E", "-s", "-B", "-c", code, str(int(limits.output_bytes)), json.dumps(cfg)]
    return args


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
        reply = {key: payload[key] for key in REPLY_FIELDS if key in payload}
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
