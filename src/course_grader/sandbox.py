"""A bubblewrap sandbox that runs one student's code, spoken to over pipes.

The sandboxed process sees a read-only system (/usr, /lib, the Python installation and the
venv's site-packages -- which holds neither cnnmath nor course_grader: both are editable
installs from src/, which is never mounted), a private /proc, a minimal /dev, no network
(new network namespace) and two small tmpfs: /tmp and its working directory /scratch, the
only writable places. It runs in new pid/ipc/uts namespaces and a new session, so killing it
(or the grader dying: --die-with-parent) kills every process it started. Under root it drops
to an unprivileged uid/gid of its own (see :func:`sandbox_uid`) before any student code runs. rlimits cap address space, CPU time,
processes, file size and core dumps; the grader enforces per-call and per-notebook timeouts
and an output budget.
"""
import functools
import json
import os
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass

from . import wire

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
    nproc: int = 64                   # processes/threads of the sandbox user


class SandboxError(Exception):
    """The sandbox could not be started."""


class SandboxDied(Exception):
    """The sandboxed process is gone (crashed, killed, or over a limit)."""

    def __init__(self, reason, flag):
        super().__init__(reason)
        self.reason = reason
        self.flag = flag  # "timeout", "crash", "memory", "output"


def _site_packages():
    paths = []
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths()[key]
        if p not in paths and os.path.isdir(p):
            paths.append(p)
    return paths


@functools.lru_cache(maxsize=None)
def _child_source():
    """expressions.py, wire.py then _child.py (read once per process, not once per sandbox)."""
    with open(os.path.join(HERE, "expressions.py"), encoding="utf-8") as f:
        expressions_src = f.read()
    with open(os.path.join(HERE, "wire.py"), encoding="utf-8") as f:
        wire_src = f.read()
    with open(os.path.join(HERE, "_child.py"), encoding="utf-8") as f:
        child_src = f.read()
    return expressions_src + "\n" + wire_src + "\n" + child_src


_PRELUDE = r'''
import os, sys, resource, json
_cfg = json.loads(sys.argv.pop(2))
for _p in _cfg["site"]:
    sys.path.append(_p)
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


def build_command(limits):
    """The bwrap command line (a list) for one sandboxed student process."""
    python = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    args = [bwrap_path()]
    for d in ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin"):
        if os.path.exists(d):
            args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
              "/etc/alternatives", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    made = {"/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin", "/etc"}
    mounted = []
    if not any(prefix == d or prefix.startswith(d + "/") for d in ("/usr", "/bin", "/lib", "/lib64")):
        args += _dirs_to(prefix, made) + ["--ro-bind", prefix, prefix]
        mounted.append(prefix)
    site_dirs = []
    for i, sp in enumerate(_site_packages()):
        target = f"/grader/site{i}"
        args += _dirs_to(target, made) + ["--ro-bind", sp, target]
        site_dirs.append(target)
        # never let an installed (non-editable) copy of the course packages through
        for hidden in ("cnnmath", "course_grader"):
            if os.path.isdir(os.path.join(sp, hidden)):
                args += ["--tmpfs", f"{target}/{hidden}"]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "01777", "--size", str(64 << 20), "--tmpfs", "/tmp",
             "--perms", "01777", "--size", str(64 << 20), "--tmpfs", "/scratch",
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
    cfg = {"site": site_dirs, "memory": int(limits.memory_mb) << 20, "nproc": int(limits.nproc),
           "cpu": int(limits.notebook_timeout) + 5, "fsize": 32 << 20, "uid": sandbox_uid()}
    code = _PRELUDE + _child_source()
    args += [python, "-S", "-E", "-s", "-B", "-c", code, str(int(limits.output_bytes)), json.dumps(cfg)]
    return args


def _preexec():
    os.setsid()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


class Sandbox:
    """One sandboxed Python process holding one student's namespace."""

    def __init__(self, limits, deadline=None):
        self.limits = limits
        self.deadline = deadline if deadline is not None else time.monotonic() + limits.notebook_timeout
        self.dead = None
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        try:
            self.proc = subprocess.Popen(build_command(limits), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, preexec_fn=_preexec, close_fds=True)
        except OSError as exc:
            raise SandboxError(f"cannot start bubblewrap: {exc}") from None
        self._buf = b""

    # -- low level -------------------------------------------------------------------
    def _fail(self, reason, flag):
        self.dead = SandboxDied(reason, flag)
        self.close()
        raise self.dead

    def _read_exact(self, n, until):
        fd = self.proc.stdout.fileno()
        while len(self._buf) < n:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, max(65536, n - len(self._buf)))
            if not chunk:
                raise EOFError
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def request(self, message, timeout):
        """Send one request; wait at most ``timeout`` seconds (and the notebook deadline)."""
        if self.dead is not None:
            raise self.dead
        self._seq = getattr(self, "_seq", 0) + 1
        message = dict(message, seq=self._seq)
        now = time.monotonic()
        until = min(now + timeout, self.deadline)
        which = "notebook" if self.deadline <= now + timeout else "cell"
        try:
            wire.write_message(self.proc.stdin, message)
            head = self._read_exact(8, until)
            if head is None:
                self._timeout(which)
            (length,) = struct.unpack(">Q", head)
            if length > max(64 << 20, (int(self.limits.memory_mb) + 16) << 20):
                self._fail("the student's process sent an oversized message", "crash")
            body = self._read_exact(length, until + 5.0)
            if body is None:
                self._timeout(which)
        except (EOFError, BrokenPipeError, OSError):
            self._died()
        try:
            reply = wire.loads(body)
        except wire.WireError as exc:
            self._fail(f"the student's process sent a malformed reply ({exc})", "crash")
        if not isinstance(reply, dict):
            self._fail("the student's process sent a malformed reply", "crash")
        if reply.get("seq") != self._seq:
            self._fail("the student's process sent a reply that does not answer the grader's request "
                       "(a forged kernel reply)", "tampering")
        return reply

    def _timeout(self, which):
        if which == "notebook":
            self._fail(f"the notebook exceeded its wall-clock limit of {self.limits.notebook_timeout:g} s",
                       "timeout")
        self._fail(f"a cell exceeded the time limit of {self.limits.cell_timeout:g} s", "timeout")

    def _died(self):
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        err = b""
        try:
            err = self.proc.stderr.read(4000) or b""
        except Exception:
            pass
        rc = self.proc.returncode
        if rc is not None and rc < 0 and -rc == signal.SIGXCPU:
            self._fail("the student's code exceeded its CPU time limit", "timeout")
        if b"MemoryError" in err:
            self._fail("the student's code ran out of memory "
                       f"(limit {self.limits.memory_mb} MB)", "memory")
        detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        self._fail("the student's kernel died" + (f" (exit status {rc})" if rc is not None else "")
                   + (f": {detail[0][:300]}" if detail else ""), "crash")

    def close(self):
        proc = getattr(self, "proc", None)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.kill()
            except ProcessLookupError:
                pass
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
