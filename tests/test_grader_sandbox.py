"""The bubblewrap sandbox of course_grader: isolation, limits and the plain-data wire format."""
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from course_grader import wire
from course_grader.sandbox import Limits, Sandbox, SandboxDied

REPO = Path(__file__).resolve().parents[1]

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


@pytest.fixture
def sandbox():
    with Sandbox(Limits(cell_timeout=10, notebook_timeout=60, memory_mb=512, output_bytes=20_000)) as sb:
        yield sb


def run_ok(sb, code):
    reply = sb.run_cell(code)
    assert reply["ok"], reply
    return reply


def error_of(sb, code):
    reply = sb.run_cell(code)
    assert not reply["ok"], f"expected {code!r} to fail inside the sandbox, got {reply}"
    return reply["error"]["ename"] + ": " + reply["error"]["evalue"]


@needs_bwrap
def test_cannot_read_instructor_files(sandbox, tmp_path):
    secret = tmp_path / "gradebook.db"
    secret.write_text("secret")
    for path in [secret, REPO / "solutions", REPO / "src" / "cnnmath" / "conv.py", REPO / "README.md",
                 Path.home() / ".bashrc"]:
        err = error_of(sandbox, f"open({str(path)!r}).read()")
        assert "FileNotFoundError" in err or "PermissionError" in err, err
    assert "ModuleNotFoundError" in error_of(sandbox, "import cnnmath")
    assert "ModuleNotFoundError" in error_of(sandbox, "import course_grader")
    listing = run_ok(sandbox, "import os\nprint(sorted(os.listdir('/')))")["stdout"]
    assert "'work'" not in listing and "'home'" not in listing, listing


@needs_bwrap
def test_can_write_only_scratch(sandbox):
    out = run_ok(sandbox, "open('notes.txt', 'w').write('x')\nimport os\nprint(os.getcwd())")["stdout"]
    assert out.strip() == "/scratch"
    for target in ["/usr/evil", "/etc/evil", "/evil", "/grader/site0/evil.py", "/proc/evil"]:
        err = error_of(sandbox, f"open({target!r}, 'w').write('x')")
        assert any(e in err for e in ("OSError", "PermissionError", "FileNotFoundError")), err


@needs_bwrap
def test_no_network(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        err = error_of(sandbox, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
        assert "Error" in err
        err = error_of(sandbox, "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)")
        assert "unreachable" in err.lower() or "Error" in err
    finally:
        server.close()


def _processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    found.append(pid)
            except OSError:
                pass
    return found


@needs_bwrap
def test_child_processes_die_with_the_sandbox():
    marker = f"cg-marker-{uuid.uuid4().hex}"
    sb = Sandbox(Limits(cell_timeout=10, notebook_timeout=60))
    try:
        run_ok(sb, "import subprocess, sys, os\n"
                   f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}], "
                   "start_new_session=True)\n"
                   "if os.fork() == 0:\n    os.setsid()\n    os.execv(sys.executable, [sys.executable, '-c', "
                   f"'import time; time.sleep(300)', {marker!r}])\n")
        deadline = time.time() + 5
        while len(_processes_with(marker)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert len(_processes_with(marker)) == 2
    finally:
        sb.close()
    deadline = time.time() + 5
    while _processes_with(marker) and time.time() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []


@needs_bwrap
def test_memory_cap():
    with Sandbox(Limits(memory_mb=300)) as sb:
        assert "MemoryError" in error_of(sb, "x = bytearray(600 * 1024 * 1024)")
        run_ok(sb, "y = bytearray(50 * 1024 * 1024)")


@needs_bwrap
def test_cell_timeout_and_notebook_timeout():
    with Sandbox(Limits(cell_timeout=1.0, notebook_timeout=30)) as sb:
        t0 = time.monotonic()
        with pytest.raises(SandboxDied) as info:
            sb.run_cell("while True:\n    pass")
        assert info.value.flag == "timeout" and time.monotonic() - t0 < 5
    with Sandbox(Limits(cell_timeout=30, notebook_timeout=1.5)) as sb:
        run_ok(sb, "x = 1")
        with pytest.raises(SandboxDied) as info:
            sb.run_cell("import time\ntime.sleep(10)")
        assert info.value.flag == "timeout" and "wall-clock" in info.value.reason


@needs_bwrap
def test_output_cap_and_stderr(sandbox):
    reply = sandbox.run_cell("import sys\nprint('to stderr', file=sys.stderr)\nprint('hello')")
    assert reply["ok"] and reply["stderr"] == "to stderr\n" and reply["stdout"] == "hello\n"
    reply = sandbox.run_cell("for i in range(10**6):\n    print('x' * 100)")
    assert reply["output_exceeded"] and len(reply["stdout"]) <= 20_000


@needs_bwrap
def test_calls_return_plain_data_only(sandbox):
    run_ok(sandbox, "import numpy as np\n"
                    "def f(x, n=2):\n    return x * n, {'sum': float(x.sum())}, [None, 'a']\n"
                    "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
                    "def sneaky():\n    return AlwaysEqual()\n"
                    "def gen(k):\n    return (np.full(2, i) for i in range(k))\n"
                    "def kills():\n    import os\n    os._exit(3)\n")
    reply = sandbox.call("f", (np.arange(3.0),), {"n": 3}, timeout=5)
    arr, d, lst = reply["value"]
    assert type(arr) is np.ndarray and arr.tolist() == [0.0, 3.0, 6.0] and d == {"sum": 3.0} and lst == [None, "a"]
    reply = sandbox.call("sneaky", (), {}, timeout=5)
    assert not reply["ok"] and "cannot transfer" in reply["error"]["evalue"]
    reply = sandbox.call("gen", (3,), {}, timeout=5)
    assert [a.tolist() for a in reply["value"]] == [[0, 0], [1, 1], [2, 2]]
    with pytest.raises(SandboxDied) as info:
        sandbox.call("kills", (), {}, timeout=5)
    assert info.value.flag == "crash"


def test_wire_round_trip_and_refusals():
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), 3: (1, 2.5, None, True, "s", b"b", 1 + 2j),
             "big": 2 ** 80, "nan": float("nan"), "scalar": np.float32(1.5), "l": [np.int64(4)]}
    back = wire.loads(wire.dumps(value))
    assert back["a"].dtype == np.float32 and back["a"].shape == (2, 3)
    assert back[3] == (1, 2.5, None, True, "s", b"b", 1 + 2j) and back["big"] == 2 ** 80
    assert np.isnan(back["nan"]) and back["scalar"].dtype == np.float32 and back["l"][0] == 4
    with pytest.raises(wire.WireError):
        wire.dumps(np.array([object()], dtype=object))
    with pytest.raises(wire.WireError):
        wire.dumps(lambda: 0)

    class Liar(float):
        def __eq__(self, other):
            return True
    assert type(wire.loads(wire.dumps(Liar(2.0)))) is float
    with pytest.raises(wire.WireError):
        wire.loads(b"\x00" * 8 + b"garbage")


@needs_bwrap
def test_notebook_magics_do_not_break_answers(sandbox):
    from course_grader.runner import _transform
    run_ok(sandbox, _transform("%%time\ndef f(x):\n    return x + 1\n"))
    assert run_ok(sandbox, _transform("%matplotlib inline\n!ls /\nf(2)"))["result"] == "3"
