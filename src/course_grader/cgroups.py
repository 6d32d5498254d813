"""One cgroup (v1) per sandbox run: its own memory, CPU and process limits, and its own accounting.

A :class:`SandboxCgroup` is created in the ``memory``, ``cpu``, ``cpuacct`` and ``pids``
hierarchies under ``root`` (default ``/sys/fs/cgroup``), as a child of the cgroup the grader
itself runs in, with a unique name. Its limits:

* ``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes`` (when swap accounting is on):
  every page the sandbox's processes charge, including shared memory, memfd files and the
  sandbox's tmpfs (/tmp, /scratch, /dev/shm), which an address-space rlimit does not see;
* ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``: at most ``cpus`` cores, however many busy
  processes the sandbox starts, so it cannot slow a notebook graded alongside;
* ``pids.max``: processes and threads of the whole sandbox.

The sandbox joins it before bubblewrap starts (:meth:`SandboxCgroup.wrap`); afterwards its CPU
time (``cpuacct.usage``), peak memory and OOM kills are read (:meth:`usage`), every
process still in it is killed and it is removed (:meth:`close`, also on timeouts and errors).
"""
import errno
import os
import secrets
import signal
import time

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
DEFAULT_ROOT = "/sys/fs/cgroup"
ROOT_ENV = "COURSE_GRADER_CGROUP_ROOT"
SETUP_HINT = ("grading needs cgroup v1 hierarchies cpu, cpuacct, memory and pids mounted read-write under "
              "{root}, and root: see 'Isolation' in the README (sudo make cgroups)")
PREFIX = "course-grader-"
JOIN_FAILED = 125  # exit status of the wrapper when it cannot join the cgroup


class CgroupError(Exception):
    """The per-sandbox cgroup cannot be created or joined."""


def default_root():
    """The cgroup mount point: $COURSE_GRADER_CGROUP_ROOT, or /sys/fs/cgroup."""
    return os.environ.get(ROOT_ENV) or DEFAULT_ROOT


def _own_path(controller):
    """This process's cgroup in the hierarchy of ``controller`` ('/' if not listed)."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controller in controllers.split(","):
                    return path
    except OSError:
        pass
    return "/"


def hierarchy_parents(root):
    """controller -> the folder new sandbox cgroups are created in; raises :class:`CgroupError`.

    The parent is the grader's own cgroup in each hierarchy (so the grader's own limits still
    bound its sandboxes), or the hierarchy's root when that folder is not visible.
    """
    parents = {}
    probe = {"memory": "memory.limit_in_bytes", "cpu": "cpu.cfs_quota_us", "cpuacct": "cpuacct.usage",
             "pids": "cgroup.procs"}
    for controller in CONTROLLERS:
        mount = os.path.join(root, controller)
        if not os.path.isfile(os.path.join(mount, probe[controller])):
            raise CgroupError(f"no cgroup v1 '{controller}' hierarchy at {mount}: " + SETUP_HINT.format(root=root))
        parent = os.path.join(mount, _own_path(controller).lstrip("/"))
        if not os.path.isdir(parent):
            parent = mount
        if not os.access(parent, os.W_OK):
            raise CgroupError(f"cannot create cgroups in {parent} (not writable by uid {os.geteuid()}): "
                              + SETUP_HINT.format(root=root))
        parents[controller] = parent
    return parents


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def reap_stale(parent):
    """Remove the empty sandbox cgroups in ``parent`` whose grader process is gone.

    A grader killed, or a worker process that exits without closing its last sandbox, leaves
    its cgroup folder behind; the next sandbox created next to it removes it.
    """
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if name.startswith(PREFIX) and len(parts) == 4 and parts[2].isdigit() and not _pid_alive(int(parts[2])):
            try:
                os.rmdir(os.path.join(parent, name))
            except OSError:
                pass  # still has processes (or already gone)


def _parent_quota(path, period):
    """The CPU quota of the nearest ancestor with one, per ``period`` microseconds (None if none)."""
    parent = os.path.dirname(path)
    while os.path.isfile(os.path.join(parent, "cpu.cfs_quota_us")):
        try:
            quota = int(_read(os.path.join(parent, "cpu.cfs_quota_us"), "-1"))
            own_period = int(_read(os.path.join(parent, "cpu.cfs_period_us"), "100000"))
        except ValueError:
            return None
        if quota > 0:
            return max(1000, quota * period // own_period)
        parent = os.path.dirname(parent)
    return None


def _write(path, value):
    with open(path, "w", encoding="ascii") as f:
        f.write(str(value))


def _read(path, default=None):
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except OSError:
        return default


class SandboxCgroup:
    """The cgroup of one sandbox run; use as a context manager (removed on exit).

    Parameters
    ----------
    memory_bytes : int
        Memory of the whole sandbox (all processes, shared memory and tmpfs pages included).
    cpus : float
        CPU share: at most this many cores' worth of CPU time per scheduling period.
    pids : int
        Processes and threads of the whole sandbox.
    root : str, optional
        Where the cgroup v1 hierarchies are mounted (default :func:`default_root`).
    """

    def __init__(self, memory_bytes, cpus, pids, root=None):
        if int(memory_bytes) <= 0:
            raise CgroupError(f"memory_bytes must be a positive int, got {memory_bytes!r}")
        if not float(cpus) > 0:
            raise CgroupError(f"cpus must be a positive number, got {cpus!r}")
        if int(pids) <= 0:
            raise CgroupError(f"pids must be a positive int, got {pids!r}")
        self.root = root or default_root()
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self.paths = {}
        self.closed = False
        self.final_usage = None
        parents = hierarchy_parents(self.root)
        made = {}
        try:
            for controller, parent in parents.items():
                reap_stale(parent)
                path = os.path.join(parent, self.name)
                real = os.path.realpath(parent)
                if real in made:  # co-mounted controllers (cpu,cpuacct) share one folder
                    self.paths[controller] = made[real]
                    continue
                os.mkdir(path)
                made[real] = path
                self.paths[controller] = path
            mem = self.paths["memory"]
            _write(os.path.join(mem, "memory.limit_in_bytes"), int(memory_bytes))
            if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
                _write(os.path.join(mem, "memory.memsw.limit_in_bytes"), int(memory_bytes))
            period = 100_000
            _write(os.path.join(self.paths["cpu"], "cpu.cfs_period_us"), period)
            quota = max(1000, int(float(cpus) * period))
            try:
                _write(os.path.join(self.paths["cpu"], "cpu.cfs_quota_us"), quota)
            except OSError as exc:  # the grader's own cgroup has a smaller quota: a child cannot exceed it
                parent_quota = _parent_quota(self.paths["cpu"], period)
                if exc.errno != errno.EINVAL or not parent_quota or parent_quota >= quota:
                    raise
                _write(os.path.join(self.paths["cpu"], "cpu.cfs_quota_us"), parent_quota)
            _write(os.path.join(self.paths["pids"], "pids.max"), int(pids))
        except OSError as exc:
            self.close()
            raise CgroupError(f"cannot set up the sandbox cgroup {self.name} under {self.root}: "
                              f"{exc.strerror or exc} ({exc.filename or ''})") from None

    # -- joining ---------------------------------------------------------------------
    def procs_files(self):
        """The cgroup.procs file of every distinct folder (the ones a process must join)."""
        return sorted({os.path.join(p, "cgroup.procs") for p in self.paths.values()})

    def wrap(self, command):
        """``command`` behind a tiny shell that moves itself into this cgroup, then execs it.

        Everything the command starts is born inside the cgroup; if joining fails the shell
        exits with status :data:`JOIN_FAILED` before running anything.
        """
        files = self.procs_files()
        script = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit %d; shift; n=$((n-1)); done; '
                  'exec "$@"' % JOIN_FAILED)
        return ["/bin/sh", "-c", script, "sh", str(len(files)), *files, *command]

    # -- accounting ------------------------------------------------------------------
    def cpu_seconds(self):
        """CPU time used by every process of the sandbox so far (cpuacct.usage)."""
        if self.final_usage is not None:
            return self.final_usage["cpu_seconds"]
        raw = _read(os.path.join(self.paths.get("cpuacct", ""), "cpuacct.usage"), "0")
        try:
            return int(raw.strip() or 0) / 1e9
        except ValueError:
            return 0.0

    def oom_kills(self):
        """How many processes of the sandbox the kernel killed at the memory limit."""
        if self.final_usage is not None:
            return self.final_usage["oom_kills"]
        text = _read(os.path.join(self.paths.get("memory", ""), "memory.oom_control"), "")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def limit_hits(self):
        """How many times the sandbox's memory use reached its limit (memory.failcnt)."""
        if self.final_usage is not None:
            return self.final_usage.get("limit_hits", 0)
        raw = _read(os.path.join(self.paths.get("memory", ""), "memory.failcnt"), "0").strip()
        return int(raw) if raw.isdigit() else 0

    def usage(self):
        """Plain dict: cpu_seconds, memory_peak_bytes (memory.max_usage_in_bytes), oom_kills."""
        if self.final_usage is not None:
            return dict(self.final_usage)
        mem = self.paths.get("memory", "")

        def number(name):
            raw = _read(os.path.join(mem, name), "0").strip()
            return int(raw) if raw.isdigit() else 0
        return {"cpu_seconds": round(self.cpu_seconds(), 6),
                "memory_peak_bytes": max(number("memory.max_usage_in_bytes"), number("memory.memsw.max_usage_in_bytes")),
                "oom_kills": self.oom_kills(), "limit_hits": self.limit_hits()}

    # -- teardown --------------------------------------------------------------------
    def pids(self):
        """Every process still in the cgroup."""
        found = set()
        for path in self.procs_files():
            for line in (_read(path, "") or "").split():
                if line.isdigit():
                    found.add(int(line))
        return found

    def kill_all(self, timeout=5.0):
        """SIGKILL every process in the cgroup until it is empty (or ``timeout`` passes)."""
        until = time.monotonic() + timeout
        while True:
            left = self.pids()
            if not left:
                return True
            if time.monotonic() > until:
                return False
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def close(self):
        """Kill what is left, keep the final usage, remove the cgroup folders (idempotent)."""
        if self.closed:
            return
        if self.paths:
            self.kill_all()
            try:
                self.final_usage = self.usage()
            except OSError:
                self.final_usage = {"cpu_seconds": 0.0, "memory_peak_bytes": 0, "oom_kills": 0, "limit_hits": 0}
        self.closed = True
        for path in sorted(set(self.paths.values()), reverse=True):
            for _ in range(100):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    self.kill_all(timeout=0.5)
                    time.sleep(0.02)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
