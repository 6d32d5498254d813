"""The sandbox's isolation layer (issue 17, points 2, 3, 6, 7): per-sandbox cgroups and the allowed packages.

Through the real `course-grader grade` (tests/grader_corpus/isolation_cases.py): memory held outside the
address space (memfd, POSIX and /dev/shm shared memory, tmpfs files, forked children) is flagged "memory
limit exceeded (counting shared memory)" and costs the part; SciPy and PyTorch calls fail with the rule;
process pools, stride tricks, einsum and SymPy answers get full marks; without cgroups grading refuses
in one line. Directly on :class:`Sandbox`: the cgroup's limits are the notebook's, its processes are
all killed and it is removed (also on a timeout); a cell's limit is CPU time of every process it starts
(a sleeping cell is not charged, a busy one is stopped); many busy processes in one sandbox get no more
than their CPU share, so a notebook graded alongside keeps its speed and passes.
"""
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from course_grader import allowed_modules
from course_grader.sandbox import Limits, Sandbox, SandboxDied, SandboxError
from tests.grader_corpus.isolation_cases import CASES, MEMORY_MB, SHARED
from tests.grader_helpers import (CLI, REPO, cell_text, grade_notebook, graded_points, needs_bwrap, new_course, reference_answers, run,
                                  student_notebook)

pytestmark = needs_bwrap
ASSIGNMENT = "conv2d"


# -- through the real command ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = new_course(tmp_path_factory, "isolation_course", [ASSIGNMENT])
    run(root, "release", "--all")
    source = json.loads((root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    release = json.loads((root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    for c in release["cells"]:
        c["source"] = cell_text(c)
    sol = reference_answers(source)
    students = {case.name: case.answer(sol["conv2d"]) for case in CASES}
    students["honest_reference"] = sol["conv2d"]
    for student, answer in students.items():
        folder = root / "incoming" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(student_notebook(release, {**sol, "conv2d": answer})))
    run(root, "collect", ASSIGNMENT, "--from-folder", str(root / "incoming"))
    run(root, "grade", ASSIGNMENT, "--workers", "2", "--memory-mb", str(MEMORY_MB), "--quiet", timeout=900)
    results = {s: json.loads((root / "grader_results" / ASSIGNMENT / f"{s}.json").read_text())[ASSIGNMENT]
               for s in students}
    return SimpleNamespace(root=root, results=results, points=graded_points(source), sol=sol)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_gets_exactly_its_points_flags_and_message(graded, case):
    result = graded.results[case.name]
    got = {gid: t["points"] for gid, t in result["tests"].items()}
    expected = {gid: (0.0 if gid in case.lost else p) for gid, p in graded.points.items()}
    assert got == expected, f"{case.name}: {json.dumps(result['tests'], indent=1)[:3000]}"
    assert {f[0] for f in result["flags"]} == set(case.flags), result["flags"]
    if "memory" in case.flags:
        assert any(SHARED in f[1] and str(MEMORY_MB) in f[1] for f in result["flags"]), result["flags"]
    if case.message:
        notebook = (graded.root / "autograded" / case.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
        assert case.message in notebook, f"{case.name}: the student is not told {case.message!r}"


def test_the_honest_reference_gets_full_marks_unflagged(graded):
    result = graded.results["honest_reference"]
    assert result["flags"] == [] and result["score"] == sum(graded.points.values()), result


def test_no_cgroup_is_left_behind_by_the_command(graded):
    """Every sandbox of the batch (the workers' last, pre-started ones too) removed its cgroup."""
    from course_grader import cgroups
    left = []
    for parent in set(cgroups.hierarchy_parents(cgroups.default_root()).values()):
        for name in os.listdir(parent):
            parts = name.split("-")
            if name.startswith(cgroups.PREFIX) and not Path(f"/proc/{parts[2]}").exists():
                left.append(os.path.join(parent, name))
    assert left == []


def test_the_scipy_answers_would_earn_points_outside_the_sandbox(graded):
    """The banned answers are correct conv2d's: only the sandbox's rule costs them their points."""
    import scipy.signal  # noqa: F401 (the answers import it themselves)
    ns = {"np": np}
    exec(graded.sol["conv2d"].replace("def conv2d(", "def reference(", 1), ns)
    rng = np.random.default_rng(3)
    checked = 0
    for case in CASES:
        if not case.name.startswith(("ban_import_scipy_signal", "ban_from_scipy", "ban_import_module")):
            continue
        local = {"np": np}
        exec(case.answer(graded.sol["conv2d"]), local)
        for stride, padding, dtype in [(1, 0, np.float64), (2, 1, np.float32), (3, 2, np.float64)]:
            x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
            w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
            b = rng.standard_normal(4).astype(dtype)
            got = local["conv2d"](x, w, b, stride=stride, padding=padding)
            want = ns["reference"](x, w, b, stride=stride, padding=padding)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        checked += 1
    assert checked == 3


def test_grading_refuses_without_cgroups(graded, tmp_path):
    """A machine without the cgroup hierarchies: one clear line, exit status 2, nothing graded."""
    record = graded.root / "grader_results" / ASSIGNMENT / "honest_reference.json"
    before = record.stat().st_mtime_ns
    env = dict(os.environ, COURSE_GRADER_CGROUP_ROOT=str(tmp_path / "no-cgroups"))
    proc = subprocess.run([CLI, "--course-dir", str(graded.root), "grade", ASSIGNMENT, "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("course-grader: error:"), proc.stderr
    assert "cgroup" in lines[0] and str(tmp_path / "no-cgroups" / "memory") in lines[0] and "README" in lines[0]
    assert record.stat().st_mtime_ns == before


ALL_ASSIGNMENTS = sorted(p.parent.name for p in REPO.glob("solutions/*/*.ipynb") if p.parent.name == p.stem)


@pytest.mark.parametrize("assignment", ALL_ASSIGNMENTS)
def test_every_assignments_reference_answers_pass_unflagged_in_the_isolated_sandbox(assignment, tmp_path):
    """Only the allowed packages, the cgroup limits and the import guard: no honest answer loses anything."""
    source = json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    release = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    for c in release["cells"]:
        c["source"] = cell_text(c)
    path = tmp_path / f"{assignment}.ipynb"
    path.write_text(json.dumps(student_notebook(release, reference_answers(source))))
    result = grade_notebook(source, release, path, Limits(), assignment=assignment)
    assert result["flags"] == [] and result["score"] == sum(graded_points(source).values()), \
        (result["flags"], {g: t["message"][:300] for g, t in result["tests"].items() if not t["passed"]})


def test_there_are_assignments():
    assert len(ALL_ASSIGNMENTS) >= 11, ALL_ASSIGNMENTS


# -- the sandbox's cgroup ----------------------------------------------------------------------------------
def run_ok(sb, code, timeout=None):
    reply = sb.run_cell(code, timeout=timeout)
    assert reply["ok"], reply.get("error")
    return reply


def test_the_cgroup_carries_the_notebooks_limits_and_is_removed():
    limits = Limits(cell_timeout=10, notebook_timeout=60, memory_mb=300, nproc=50, cpus=1.0)
    with Sandbox(limits) as sb:
        run_ok(sb, "x = 1")
        paths = dict(sb.cgroup.paths)
        read = lambda c, f: Path(paths[c], f).read_text().strip()   # noqa: E731
        assert int(read("memory", "memory.limit_in_bytes")) == 300 << 20
        if Path(paths["memory"], "memory.memsw.limit_in_bytes").exists():
            assert int(read("memory", "memory.memsw.limit_in_bytes")) == 300 << 20
        assert int(read("cpu", "cpu.cfs_quota_us")) == int(read("cpu", "cpu.cfs_period_us"))
        assert int(read("pids", "pids.max")) == 50
        members = sb.cgroup.pids()
        assert sb.proc.pid in members and len(members) >= 2, members
        # the student's process is inside: its own CPU time shows in the cgroup's account
        before = sb.usage()["cpu_seconds"]
        run_ok(sb, "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n    pass")
        assert sb.usage()["cpu_seconds"] - before >= 0.45
        assert run_ok(sb, "import os\nos.cpu_count()")["result"] == "1"
    assert all(not Path(p).exists() for p in paths.values()), paths
    assert sb.usage()["cpu_seconds"] >= 0.45   # the final account is kept after removal


HOLD_60_MB = {
    "memfd": "import os\nfds = [os.memfd_create('h1'), os.memfd_create('h2')]\nfor i in range(60):\n"
             "    os.write(fds[i % 2], b'm' * (1 << 20))",
    "/dev/shm": "with open('/dev/shm/h', 'wb') as f:\n    for i in range(30):\n        f.write(b'd' * (1 << 20))\n"
                "with open('/dev/shm/h2', 'wb') as f:\n    for i in range(30):\n        f.write(b'd' * (1 << 20))",
    "/tmp": "with open('/tmp/h', 'wb') as f:\n    for i in range(30):\n        f.write(b't' * (1 << 20))\n"
            "with open('/scratch/h', 'wb') as f:\n    for i in range(30):\n        f.write(b't' * (1 << 20))",
}


@pytest.mark.parametrize("where", sorted(HOLD_60_MB))
def test_the_cgroup_counts_memory_outside_the_address_space(where):
    """60 MB held in files in memory (none of it in the process's address space) shows in the account."""
    with Sandbox(Limits(cell_timeout=20, notebook_timeout=60, memory_mb=400)) as sb:
        run_ok(sb, "import os\nx = 1")
        before = int(Path(sb.cgroup.paths["memory"], "memory.usage_in_bytes").read_text())
        run_ok(sb, HOLD_60_MB[where])
        after = int(Path(sb.cgroup.paths["memory"], "memory.usage_in_bytes").read_text())
        assert after - before >= 58 << 20, (where, before, after)
        assert sb.usage()["memory_peak_bytes"] >= after and sb.usage()["oom_kills"] == 0


def _alive(pids):
    return [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_every_process_is_killed_and_the_cgroup_removed_after_a_timeout():
    sb = Sandbox(Limits(cell_timeout=1.0, notebook_timeout=30))
    run_ok(sb, "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n"
               "        time.sleep(300)\n        os._exit(0)")
    members = sb.cgroup.pids()
    paths = list(sb.cgroup.paths.values())
    assert len(members) >= 5, members    # bwrap, its init, the student's process and its three children
    with pytest.raises(SandboxDied) as died:
        sb.run_cell("while True:\n    pass")
    assert died.value.flag == "timeout"
    assert _alive(members) == [] and all(not Path(p).exists() for p in paths)


def test_the_cell_limit_is_cpu_time_of_every_process_it_starts():
    limits = Limits(cell_timeout=1.5, notebook_timeout=60, wall_slack=6.0)
    busy_variants = {
        "one busy loop": "while True:\n    pass",
        "three busy processes": "import os\nfor _ in range(2):\n    if os.fork() == 0:\n        break\n"
                                "while True:\n    pass",
        "a busy subprocess": "import subprocess, sys\n"
                             "subprocess.run([sys.executable, '-c', 'while True: pass'])",
    }
    for label, code in busy_variants.items():
        with Sandbox(limits) as sb:
            t0 = time.monotonic()
            with pytest.raises(SandboxDied) as died:
                sb.run_cell(code)
            wall = time.monotonic() - t0
            assert died.value.flag == "timeout" and "CPU time limit of 1.5 s" in died.value.reason, (label, died.value)
            assert wall < 1.5 * 6.0 and sb.usage()["cpu_seconds"] >= 1.5, (label, wall, sb.usage())
    # a sleeping cell uses no CPU time: 3 s of wall clock pass a 1.5 s CPU limit ...
    with Sandbox(limits) as sb:
        run_ok(sb, "import time\ntime.sleep(3)")
        # ... but not the wall-clock bound (1.5 s x 6), and the sandbox says it was not over its CPU time
        with pytest.raises(SandboxDied) as died:
            sb.run_cell("time.sleep(30)")
        assert "wall-clock limit of 9 s" in died.value.reason and died.value.starved


def _busy_neighbour(limits, started, stop, out):
    with Sandbox(limits) as sb:
        out["sandbox"] = sb
        run_ok(sb, "import os, time\nfor _ in range(6):\n    if os.fork() == 0:\n        while True:\n"
                   "            pass\n")
        started.set()
        stop.wait(120)


WORK = ("import time\nt0 = time.perf_counter()\ns = 0\nfor i in range(6_000_000):\n    s += i * i\n"
        "print(time.perf_counter() - t0)")


def test_busy_processes_do_not_slow_a_notebook_graded_alongside():
    limits = Limits(cell_timeout=60, notebook_timeout=300)
    started, stop, out = threading.Event(), threading.Event(), {}
    neighbour = threading.Thread(target=_busy_neighbour, args=(limits, started, stop, out))
    neighbour.start()
    try:
        assert started.wait(60), "the busy neighbour did not start"
        bomb = out["sandbox"]
        with Sandbox(limits) as victim:
            run_ok(victim, "x = 1")
            v0, b0, t0 = victim.usage()["cpu_seconds"], bomb.usage()["cpu_seconds"], time.monotonic()
            reply = run_ok(victim, WORK)
            v1, b1, wall = victim.usage()["cpu_seconds"], bomb.usage()["cpu_seconds"], time.monotonic() - t0
    finally:
        stop.set()
        neighbour.join(60)
    victim_share, bomb_share = (v1 - v0) / wall, (b1 - b0) / wall
    # six busy processes get at most their one-core quota ...
    assert bomb_share <= 1.1, (bomb_share, wall)
    # ... and the single-threaded victim gets at least as large a share as the six of them together
    # (without per-sandbox quotas and groups it would get about 1/7 of the CPU they get)
    assert victim_share >= 0.8 * bomb_share, (victim_share, bomb_share, wall, reply["stdout"])


def test_process_pools_run_within_the_limits_or_say_which_limit():
    with Sandbox(Limits(cell_timeout=30, notebook_timeout=120, nproc=64)) as sb:
        run_ok(sb, "import multiprocessing\nfrom concurrent.futures import ProcessPoolExecutor\n"
                   "def square(v):\n    return v * v\n")
        assert run_ok(sb, "with multiprocessing.Pool() as p:\n    r = p.map(square, range(10))\nr")["result"] == \
            repr([v * v for v in range(10)])
        assert run_ok(sb, "with ProcessPoolExecutor(max_workers=3) as ex:\n    r = list(ex.map(square, range(5)))\n"
                          "r")["result"] == repr([0, 1, 4, 9, 16])
        reply = sb.run_cell("with multiprocessing.Pool(200) as p:\n    p.map(square, range(10))")
        assert not reply["ok"] and "the grading sandbox allows 64 processes and threads" in reply["error"]["evalue"]


# -- the allowed packages ----------------------------------------------------------------------------------
BANNED_IMPORTS = {
    "import scipy.signal": "scipy is not allowed in graded answers: use NumPy only",
    "from scipy import signal": "scipy is not allowed in graded answers: use NumPy only",
    "import importlib\nimportlib.import_module('scipy')": "scipy is not allowed in graded answers: use NumPy only",
    "__import__('torch')": "torch is not allowed in graded answers: use NumPy only",
    "import torch.nn.functional as F": "torch is not allowed in graded answers: use NumPy only",
    "import cnnmath": "cnnmath (the course's reference library) is not available",
    "import requests": "No module named 'requests': the grading sandbox offers",
}


def test_banned_modules_fail_with_the_rule_and_numpy_tools_work():
    with Sandbox(Limits(cell_timeout=30, notebook_timeout=120)) as sb:
        for code, message in BANNED_IMPORTS.items():
            reply = sb.run_cell(code)
            assert not reply["ok"] and message in reply["error"]["evalue"], (code, reply.get("error"))
            assert reply["error"]["ename"] == "ModuleNotFoundError"
        out = run_ok(sb, "import numpy as np\nfrom numpy.lib.stride_tricks import as_strided, sliding_window_view\n"
                         "a = np.arange(12.0).reshape(3, 4)\n"
                         "w = sliding_window_view(a, (2, 2))\n"
                         "print(np.einsum('ijkl,kl->ij', w, np.ones((2, 2))).tolist())\n"
                         "print(as_strided(a, (2, 2), a.strides).tolist())\n"
                         "import sympy\nx = sympy.symbols('x')\nprint(sympy.diff(x ** 3, x))")["stdout"]
        a = np.arange(12.0).reshape(3, 4)
        windows = np.lib.stride_tricks.sliding_window_view(a, (2, 2)).sum(axis=(2, 3))
        assert out.splitlines() == [str(windows.tolist()), str(a[:2, :2].tolist()), "3*x**2"]


def test_only_the_allowed_packages_are_mounted():
    view = {name for _, name in allowed_modules.package_view()}
    assert {"numpy", "sympy", "mpmath"} <= view and not view & {"scipy", "torch", "cnnmath", "course_grader"}
    hidden = [d for d in allowed_modules.hidden_package_dirs(allowed_modules.interpreter_prefixes())
              if os.listdir(d)]
    assert any("scipy" in os.listdir(d) for d in hidden + [os.path.dirname(np.__path__[0])]), \
        "no package folder with scipy on this machine: the test below would prove nothing"
    with Sandbox(Limits(cell_timeout=30, notebook_timeout=60)) as sb:
        listing = json.loads(run_ok(sb, "import os, json, sys\n"
                                        f"dirs = {hidden!r}\n"
                                        "print(json.dumps({'site': sorted(os.listdir('/grader/site')),"
                                        " 'hidden': {d: os.listdir(d) for d in dirs if os.path.isdir(d)},"
                                        " 'path': sys.path}))")["stdout"])
    assert set(listing["site"]) == view
    assert listing["hidden"] and all(v == [] for v in listing["hidden"].values()), listing["hidden"]
    assert not any("site-packages" in p or "dist-packages" in p for p in listing["path"]), listing["path"]


def test_a_missing_cgroup_hierarchy_is_a_clear_refusal(tmp_path):
    for root in (tmp_path / "nothing", tmp_path / "half"):
        if root.name == "half":   # a memory hierarchy folder without the controller's files
            (root / "memory").mkdir(parents=True)
        with pytest.raises(SandboxError) as info:
            Sandbox(Limits(cgroup_root=str(root)))
        message = str(info.value)
        assert "\n" not in message and "per-sandbox cgroup limits are unavailable" in message
        assert f"no cgroup v1 'memory' hierarchy at {root / 'memory'}" in message and "README" in message
