"""The command line of one sandbox: bubblewrap's mounts and namespaces, and the Python it runs.

:func:`build_command` mounts a read-only system with only the allowed packages
(:mod:`course_grader.allowed_modules`), and runs ``python -S -E -c`` on the prelude (rlimits, the
banned-import finders, the drop to the sandbox's own uid) followed by the supervisor and worker
sources (expressions.py, wire.py, _child_code.py, _child_worker.py, _child.py). :mod:`course_grader.sandbox` runs it.
"""
import functools
import json
import os
import shutil
import sys

from . import allowed_modules

HERE = os.path.dirname(os.path.abspath(__file__))
NOBODY = 65534


ADDRESS_HEADROOM_MB = 128   # address space beyond --memory-mb: reserved, never touched (see build_command)


def sandbox_uid():
    """The uid a sandbox runs as under root: one per live sandbox, used by nothing else.

    RLIMIT_NPROC counts the processes of a uid machine-wide, so sandboxes sharing one uid
    (nobody) would let one student's fork bomb stop another student's threads. A grading worker
    runs one sandbox at a time and its pid is unique among live processes.
    """
    return 1_000_000 + os.getpid() % 1_000_000


class SandboxError(Exception):
    """The sandbox could not be started."""


@functools.lru_cache(maxsize=None)
def _child_source():
    """expressions.py, wire.py, _child_code.py, _child_worker.py then _child.py (read once per process)."""
    parts = []
    for name in ("expressions.py", "wire.py", "_child_code.py", "_child_worker.py", "_child.py"):
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
    # the cgroup caps what the sandbox really uses at memory_mb; each process's address space may
    # exceed it by ADDRESS_HEADROOM_MB of reservations never touched (thread stacks, BLAS and malloc
    # arenas), so an honest process pool or thread is not refused at the edge of the limit
    memory = (int(limits.memory_mb) + ADDRESS_HEADROOM_MB) << 20
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
