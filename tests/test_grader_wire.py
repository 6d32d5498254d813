"""The sandbox's wire and reports (issue 17, points 4, 5 and 8; issue 12, point 8).

The student's code runs in a worker process; a supervisor in the sandbox holds the wire, reads the
worker's fd 1 and 2 through pipes and keeps the notebook's output budget itself, receives imports and
run-time compiled sources on an append-only report pipe, and adds every report field to the reply.
Checked here on real sandboxes and on real notebooks graded through the job pipeline:

* the output cap holds whatever the student does to sys.stdout, fd 1 and 2 or child processes;
* output past the cap is truncated with a visible marker, flagged "output", and grading goes on: a
  correct function defined before or after 5 MB of printing keeps its points; a flood is stopped;
* replies the grader did not ask for (written ahead, forged, with a wrong nonce, from a thread or a
  child) and closed or replaced report descriptors are flagged "wire" and stop the sandbox;
* reports of imports cannot be blanked by later student code;
* reading replies is linear in their size and capped; the time is counted.
"""
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from course_grader.sandbox import MAX_REPLY, Limits, Sandbox, SandboxDied
from tests.grader_corpus.wire_cases import CASES, FIVE_MB, OUTPUT_CAP
from tests.grader_helpers import REPO, cell_text, graded_points, needs_bwrap, reference_answers, student_notebook

pytestmark = needs_bwrap
CAP = 20_000


@pytest.fixture(scope="module")
def sb():
    with Sandbox(Limits(cell_timeout=20, notebook_timeout=300, output_bytes=CAP)) as box:
        yield box


def fresh(**kw):
    return Sandbox(Limits(**{"cell_timeout": 20, "notebook_timeout": 120, "output_bytes": CAP, **kw}))


# -- the output cap, out of the student's reach ------------------------------------------------------
# each prints 3 MB in all (and nothing else), by a different road around a cap kept in the process
PRINT_3MB = {
    "print": "for _ in range(3000):\n    print('x' * 999)",
    "new sys.stdout on fd 1": "import io, sys\nsys.stdout = io.TextIOWrapper(io.FileIO(1, 'w', closefd=False))\n"
                              "for _ in range(3000):\n    print('x' * 999)\nsys.stdout.flush()",
    "sys.__stdout__": "import sys\nsys.stdout = sys.__stdout__\nfor _ in range(3000):\n    print('x' * 999)",
    "os.write(1)": "import os\nfor _ in range(3000):\n    os.write(1, b'x' * 1000)",
    "os.write(2)": "import os\nfor _ in range(3000):\n    os.write(2, b'x' * 1000)",
    "a child process": "import subprocess, sys\nsubprocess.run([sys.executable, '-c', "
                       "\"import os\\nfor _ in range(3000): os.write(1, b'x' * 1000)\"])",
    "budget attributes": "import sys, gc\nfor o in gc.get_objects():\n    for a in ('budget', 'left', 'exceeded'):\n"
                         "        try:\n            setattr(o, a, 10 ** 9)\n        except Exception:\n"
                         "            pass\nfor _ in range(3000):\n    print('x' * 999)",
}


@pytest.mark.parametrize("road", sorted(PRINT_3MB))
def test_the_output_cap_holds_whatever_the_student_does(road):
    with fresh() as box:
        reply = box.run_cell(PRINT_3MB[road])
        assert reply["ok"], reply.get("error")
        kept = len((reply["stdout"] + reply["stderr"]).encode())
        assert kept == CAP, (road, kept)
        assert kept + reply["output_dropped"] == 3_000_000 and reply["output_exceeded"]
        # the budget is the notebook's: later cells keep nothing more, and say how much was dropped
        later = box.run_cell("import os\nos.write(1, b'later\\n')")
        assert later["stdout"] == "" and later["output_dropped"] == len("later\n")


def test_a_flood_is_stopped_and_the_sandbox_goes_on():
    with fresh() as box:
        t0 = time.monotonic()
        reply = box.run_cell("while True:\n    print('spam' * 1000)")
        assert time.monotonic() - t0 < 15
        assert not reply["ok"] and reply["error"]["ename"] == "KeyboardInterrupt" and reply["output_stopped"]
        assert reply["output_dropped"] > 64 << 20
        assert box.run_cell("6 * 7")["result"] == "42"


# -- replies the grader did not ask for --------------------------------------------------------------
FIND_FRAMES = ("import os, struct, sys, threading, time\n"
               "def nonce():\n"
               "    f = sys._getframe(1)\n"
               "    while f is not None:\n"
               "        if isinstance(f.f_locals.get('nonce'), bytes):\n"
               "            return f.f_locals['nonce']\n"
               "        f = f.f_back\n"
               "def frame(value, n=b''):\n"
               "    body = n + sys._getframe(1).f_globals.get('dumps', lambda v: b'{}')(value)\n"
               "    return struct.pack('>Q', len(body)) + body\n"
               "def spray(data, fds=range(3, 64)):\n"
               "    for fd in fds:\n"
               "        try:\n            os.write(fd, data)\n        except OSError:\n            pass\n")
FORGED = {
    # pre-written replies for the next calls, in a cell
    "ahead in a cell": "spray(frame({'ok': True, 'value': 1}) * 3)\n",
    # a reply with the right nonce, then the real one follows
    "the request's nonce": "def f():\n    spray(frame({'ok': True, 'value': 1}, nonce()))\n    return 2\nf()",
    # a nonce one bit off
    "a forged nonce": "n = bytearray(nonce())\nn[0] ^= 1\nspray(frame({'ok': True, 'value': 1}, bytes(n)))\n",
    # a thread that writes after the cell has answered
    "a late thread": "def late():\n    time.sleep(0.5)\n    spray(frame({'ok': True, 'value': 1}))\n"
                     "threading.Thread(target=late).start()\n",
    # a child process that writes after the cell has answered
    "a late child": "if os.fork() == 0:\n    time.sleep(0.5)\n    spray(frame({'ok': True, 'value': 1}))\n"
                    "    os._exit(0)\n",
    # garbage on the report pipe
    "garbage on every pipe": "spray(b'\\xff' * 100)\n",
    "closed stderr": "os.close(2)\n",
    "fd 1 replaced": "os.dup2(os.open('/dev/null', os.O_WRONLY), 1)\n",
    "every write pipe replaced": "import fcntl\nnul = os.open('/dev/null', os.O_WRONLY)\nfor fd in range(64):\n"
                                 "    try:\n        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE\n"
                                 "    except OSError:\n        continue\n"
                                 "    if fd != nul and mode == os.O_WRONLY and "
                                 "os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):\n        os.dup2(nul, fd)\n",
}


@pytest.mark.parametrize("attack", sorted(FORGED))
def test_replies_not_asked_for_and_tampered_descriptors_stop_the_sandbox(attack):
    with fresh() as box:
        assert box.run_cell(FIND_FRAMES)["ok"]
        with pytest.raises(SandboxDied) as died:
            box.run_cell(FORGED[attack])
            time.sleep(1.0)
            box.run_cell("x = 1")
            box.run_cell("x = 2")
        assert died.value.flag == "wire", (attack, died.value.reason)
        assert "tampered with the sandbox's channels" in died.value.reason


def test_the_worker_cannot_reach_the_supervisors_descriptors_or_memory(sb):
    """The supervisor (the worker's parent, same uid) is not dumpable: /proc/<ppid>/fd and mem are closed."""
    reply = sb.run_cell("import os\nparent = os.getppid()\nreached = []\n"
                        "for fd in range(64):\n    for mode in (os.O_WRONLY, os.O_RDONLY):\n        try:\n"
                        "            os.close(os.open(f'/proc/{parent}/fd/{fd}', mode))\n"
                        "            reached.append(fd)\n        except OSError:\n            pass\n"
                        "for name in ('mem', 'environ'):\n    try:\n"
                        "        open(f'/proc/{parent}/{name}', 'rb').read(1)\n        reached.append(name)\n"
                        "    except OSError:\n        pass\n"
                        "own = len(os.listdir('/proc/self/fd'))\n(parent > 1, reached, own > 3)")
    assert reply["ok"] and reply["result"] == "(True, [], True)", reply


def test_honest_use_of_descriptors_and_streams_is_not_tampering(sb):
    """Redirecting sys.stdout, pipes of one's own, subprocesses and pools leave the report fds alone."""
    reply = sb.run_cell("import contextlib, io, os, subprocess, sys, multiprocessing\n"
                        "buf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    print('hidden')\n"
                        "r, w = os.pipe()\nos.write(w, b'ok')\nos.close(w)\nos.close(r)\n"
                        "print(subprocess.run([sys.executable, '-c', 'print(1)'], capture_output=True, text=True)"
                        ".stdout.strip())\n"
                        "with multiprocessing.Pool(2) as p:\n    print(sum(p.map(abs, [-1, -2])))\n"
                        "buf.getvalue()")
    assert reply["ok"] and reply["wire"] == [], reply
    assert reply["stdout"] == "1\n3\n" and reply["result"] == repr("hidden\n")


IMPORTS = {
    "import": "import cnnmath",
    "__import__ with the finders removed": "sys.meta_path[:] = [m for m in sys.meta_path if getattr(m, '__name__', '') in "
                                           "('BuiltinImporter', 'FrozenImporter', 'PathFinder')]\n"
                                           "__import__('cnnmath.conv')",
    "importlib": "importlib.import_module('course_grader')",
    "exec of built text": "exec('import ' + 'cnn' + 'math')",
}


@pytest.mark.parametrize("how", sorted(IMPORTS))
def test_import_reports_cannot_be_blanked(how):
    """The attempt is reported when it happens: clearing lists, closures or the audit state afterwards is too late."""
    blank = ("import gc\nfor o in gc.get_objects():\n    if isinstance(o, list) and o and isinstance(o[0], str) "
             "and ('cnnmath' in o[0] or 'course_grader' in o[0]):\n        o.clear()\n"
             "    elif isinstance(o, dict) and ('forbidden_imports' in o or 'compiled' in o):\n        o.clear()\n")
    with fresh() as box:
        code = ("import importlib, sys\ntry:\n" + "".join("    " + line + "\n" for line in IMPORTS[how].splitlines())
                + "except ImportError:\n    pass\n" + blank)
        reply = box.run_cell(code)
        assert reply["ok"], reply.get("error")
        assert any(name.split(".")[0] in ("cnnmath", "course_grader") for name in reply["forbidden_imports"]), reply
        reply = box.run_cell("exec('z = 1 + 1')\nz")
        assert reply["forbidden_imports"] == [] and reply["result"] == "2"


# -- reading replies: capped, linear, counted --------------------------------------------------------
SHAPES = {
    "a long list of ints": "def make(n):\n    return list(range(n))",
    "nested lists": "def make(n):\n    return [[i, [i, [i]]] for i in range(n // 4)]",
    "many small arrays": "import numpy as np\ndef make(n):\n    return [np.full(2, i) for i in range(n // 64)]",
    "a huge string": "def make(n):\n    return 'a' * (n * 8)",
    "a dict of colliding keys": "def make(n):\n    m = 2 ** 61 - 1\n    return {i * m: i for i in range(1, min(n, 3000))}",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_reading_a_reply_is_linear_in_its_size(sb, shape):
    assert sb.run_cell(SHAPES[shape])["ok"]

    def cost(n):
        best = None
        for _ in range(3):
            before = sb.trusted_seconds
            reply = sb.call("make", (n,), {}, timeout=30)
            took = sb.trusted_seconds - before
            best = took if best is None else min(best, took)
        return reply, best
    small, t1 = cost(150_000)
    big, t4 = cost(600_000)
    if shape == "a dict of colliding keys":   # refused in linear time, not decoded in quadratic time
        assert not small["ok"] and "colliding" in small["error"]["evalue"], small
        return
    assert small["ok"] and big["ok"]
    # four times the size costs about four times as long (quadratic reading would cost 16 times)
    assert t4 < 8.0 * t1 + 0.02, (shape, t1, t4)


def test_a_reply_over_the_cap_is_refused_and_the_sandbox_goes_on(sb):
    assert sb.run_cell(f"import numpy as np\ndef big():\n    return np.zeros({MAX_REPLY // 8 + 1000})")["ok"]
    t0 = time.monotonic()
    reply = sb.call("big", (), {}, timeout=30)
    assert not reply["ok"] and "too large to transfer" in reply["error"]["evalue"], reply.get("error")
    assert time.monotonic() - t0 < 10
    assert sb.run_cell("1 + 1")["result"] == "2"


# -- real notebooks through the job pipeline ---------------------------------------------------------
def grade(source, release, path, limits):
    """(results record, graded notebook) of one notebook file, through jobs.Job -> work.grade_job."""
    from course_grader import integrity
    from course_grader.jobs import Job, TestPayload
    from course_grader.work import grade_job
    name = Path(path).stem
    payload = TestPayload(assignment="conv2d", notebook=name, source=source, release=release,
                          shingles=integrity.library_shingles(),
                          normalized_shingles=integrity.library_normalized_shingles(), payload_id=name)
    job = Job(assignment="conv2d", student=name, notebook=name, submission=Path(path).read_bytes(),
              submitted_as=Path(path).name, payload_id=name, limits=limits, content_hash="-")
    result = grade_job(job, payload)
    return result.record(), result.notebook_json


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    source = json.loads((REPO / "solutions" / "conv2d" / "conv2d.ipynb").read_text())
    release = json.loads((REPO / "exercises" / "conv2d" / "conv2d.ipynb").read_text())
    for c in release["cells"]:
        c["source"] = cell_text(c)
    sol = reference_answers(source)
    folder = tmp_path_factory.mktemp("wire_notebooks")
    out = {}
    for case in CASES:
        path = folder / f"{case.name}.ipynb"
        path.write_text(json.dumps(student_notebook(release, {**sol, **case.answers(sol)})))
        out[case.name] = grade(source, release, path, Limits(output_bytes=OUTPUT_CAP, memory_mb=256))
    return SimpleNamespace(results=out, points=graded_points(source))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_notebook_gets_its_points_flags_and_markers(graded, case):
    record, nb = graded.results[case.name]
    got = {gid: t["points"] for gid, t in record["tests"].items()}
    want = {gid: (0.0 if gid in case.lost else p) for gid, p in graded.points.items()}
    assert got == want, (case.name, record["flags"], {g: t["message"][:200] for g, t in record["tests"].items()})
    assert sorted({f[0] for f in record["flags"]}) == sorted(case.flags), record["flags"]
    assert record["timings"]["trusted_decode"] > 0   # reading the replies is counted
    text = json.dumps(nb)
    for marker in case.markers:
        assert marker in text, (case.name, marker)
    if "output" in case.flags:
        stored = sum(len(o.get("text", "").encode()) for c in nb["cells"] for o in c.get("outputs", [])
                     if o.get("output_type") == "stream" and not o.get("text", "").lstrip().startswith("[output"))
        assert stored <= OUTPUT_CAP < FIVE_MB, stored


def test_trusted_work_on_huge_replies_counts_in_the_notebooks_wall_clock(tmp_path):
    """Every call returns 600,000 nested lists: reading and comparing them here is charged to the notebook,
    which ends at its wall-clock limit (not long after, as when trusted time was not counted)."""
    source = json.loads((REPO / "solutions" / "conv2d" / "conv2d.ipynb").read_text())
    release = json.loads((REPO / "exercises" / "conv2d" / "conv2d.ipynb").read_text())
    for c in release["cells"]:
        c["source"] = cell_text(c)
    big = "    return [[[float(i)] for i in range(600_000)]]\n"
    answers = {"cross_correlate2d": "def cross_correlate2d(x, k):\n" + big,
               "conv2d": "def conv2d(x, w, b=None, stride=1, padding=0):\n" + big}
    path = tmp_path / "huge_replies.ipynb"
    path.write_text(json.dumps(student_notebook(release, {**reference_answers(source), **answers})))
    t0 = time.monotonic()
    record, _ = grade(source, release, path, Limits(notebook_timeout=8, cell_timeout=30))
    took = time.monotonic() - t0
    assert [f[0] for f in record["flags"]] == ["timeout"] and "wall-clock limit of 8 s" in record["flags"][0][1]
    assert record["timings"]["trusted_decode"] > 0.5, record["timings"]
    assert took < 8 + 5, took   # the limit plus at most one reply's reading and comparison
