"""Grading one submitted notebook: student cells in the sandbox, test cells in this process.

This module never executes student code itself. Student cells run in a :class:`Sandbox`;
the instructor's cells (taken from the source notebook) run here, in a fresh namespace in
which every name the solution cells define is a proxy that calls into the sandbox and gets
plain data back. A test passes when it raises nothing; its points come from the source.
"""
import builtins
import contextlib
import io
import random
import re
import time
import traceback

import numpy as np

from . import fingerprints, integrity, replay, sandbox_report
from .notebook import (assemble, cell_text, defined_names, hidden_line_ranges, is_answer, nbmeta,
                       solution_names, used_names)
from .sandbox import Sandbox, SandboxDied, SandboxError
from .seeds import SEED_NAME

HIDDEN_MESSAGE = "hidden test failed"


class SandboxSource:
    """The sandboxes of one grading worker: a fresh one for every notebook, the next one started early.

    With ``prespawn``, :meth:`prepare` starts the next notebook's sandbox as soon as one notebook is
    graded, so its interpreter starts while the worker hands back the result and receives its next job.
    A worker owns one source (a local variable of its loop, or an attribute of its Dask worker): no
    module-level state.
    """

    def __init__(self, prespawn=True):
        self.prespawn = prespawn
        self.spare = None

    def take(self, limits):
        """A sandbox for ``limits``: the spare if it matches and is alive, else a new one."""
        spare, self.spare = self.spare, None
        if spare is not None and spare.limits == limits and spare.proc.poll() is None:
            return spare
        if spare is not None:
            spare.close()
        return Sandbox(limits)

    def prepare(self, limits):
        """Start the next sandbox now (a failure to start is left to :meth:`take` to report)."""
        if self.prespawn and self.spare is None:
            try:
                self.spare = Sandbox(limits)
            except SandboxError:
                pass

    def close(self):
        spare, self.spare = self.spare, None
        if spare is not None:
            spare.close()


class SandboxStopped(BaseException):
    """Raised inside a test when the student's process is gone (never caught by `except Exception`)."""

    def __init__(self, died):
        super().__init__(died.reason)
        self.died = died


def _transform(code):
    """IPython syntax (magics, !shell) to plain Python, as a notebook kernel would."""
    if not re.search(r"^\s*[%!]|\?\s*$", code, re.M):
        return code
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(code)
    except Exception:
        return code


def _student_exception(name, error):
    ename, evalue = error.get("ename", "Exception"), error.get("evalue", "")
    cls = getattr(builtins, ename, None) if isinstance(ename, str) else None
    # never AssertionError, and never StopIteration: raised through map()/next() in a test it would
    # silently end the test's iteration instead of failing it
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or \
            issubclass(cls, (AssertionError, StopIteration, StopAsyncIteration)):
        cls = RuntimeError
        evalue = f"{ename}: {evalue}"
    try:
        exc = cls(evalue)
    except Exception:
        exc = RuntimeError(f"{ename}: {evalue}")
    exc.student_error = dict(error, function=name)
    return exc


class StudentFunction:
    """A proxy for a function the student defined in the sandbox."""

    def __init__(self, grader, name):
        self._grader = grader
        self.__name__ = self._name = name

    def __repr__(self):
        return f"<student function {self._name}>"

    def __call__(self, *args, **kwargs):
        return self._grader.call(self._name, args, kwargs)


class Grader:
    """Grades one notebook: student cells in a sandbox, the instructor's cells here.

    ``library``: the reference fingerprints for the integrity checks (see integrity.copied_from_cnnmath);
    ``sandboxes``: a :class:`SandboxSource` to take the sandbox from (default: a new sandbox);
    ``seed``: the hidden cases' seed (:func:`course_grader.seeds.grading_seed`), bound to
    ``GRADING_SEED`` (:data:`course_grader.seeds.SEED_NAME`) for the tests.
    """

    def __init__(self, source_nb, release_nb, limits, library=None, sandboxes=None, seed=0):
        self.seed = int(seed)
        self.library = library
        fingerprints.warm_up()   # cnnmath's fingerprints, once per process: never inside a test's time limit
        self.sandboxes = sandboxes
        self.sandbox_start_s = 0.0
        self.source_nb = source_nb
        self.release_nb = release_nb
        self.limits = limits
        self.names = sorted(solution_names(source_nb))
        self.sandbox = None
        self.died = None
        self.notebook_deadline = None
        self.ran, self.broken, self.deaths, self.restarts = [], {}, [], 0  # see grade()
        self.cell_outputs = None
        self.test_deadline = None
        self.calls = None  # (name, args, kwargs, value) of the running test: misconceptions
        self.where = None  # ("cell", entry index) or ("call", function name) being run in the sandbox
        self.import_hits = set()  # where the student's process tried to import cnnmath
        self.copy_hits = set()    # where it compiled (exec) code that uses or copies cnnmath, or ran cnnmath's code
        self.copy_matches = {}    # where -> the cnnmath function whose bytecode ran there
        self.report_flags = []    # flags from the sandbox's reports that do not stop it (output truncated)
        self.trusted_seconds = 0.0  # spent decoding the student's replies (Sandbox.trusted_seconds)

    # -- sandbox calls -----------------------------------------------------------------
    def _collect_output(self, reply):
        """File the supervisor's report of one request (course_grader.sandbox_report): imports of cnnmath
        and copies compiled at run time mark where they happened; output past the notebook's limit is
        truncated, marked and flagged while grading goes on; the memory limit stops the sandbox."""
        if reply.get("forbidden_imports") and self.where is not None:
            self.import_hits.add(self.where)
        compiled = reply.get("compiled")
        if compiled and self.where is not None and isinstance(compiled, list):
            for src in compiled[:50]:
                if isinstance(src, str) and integrity.source_copies_cnnmath(src, library=self.library):
                    self.copy_hits.add(self.where)
                    break
        if self.where is not None and self.where not in self.copy_hits:
            matched = fingerprints.runs_cnnmath_code(reply.get("executed"))
            if matched:   # the bytecode that ran is cnnmath's, however it was written or built
                self.copy_hits.add(self.where)
                self.copy_matches.setdefault(self.where, matched)
        outputs, flag = sandbox_report.stream_outputs(reply, self.limits.output_bytes)
        if self.cell_outputs is not None:
            self.cell_outputs.extend(outputs)
        if flag and not any(f[0] == "output" for f in self.report_flags):
            self.report_flags.append(flag)
        died = sandbox_report.memory_stop(reply, self.limits.memory_mb)
        if died is not None:
            self._stop(died)

    def _stop(self, died):
        if self.died is None:
            self.died = died
        if self.sandbox is not None:
            self.sandbox.close()
        raise SandboxStopped(self.died)

    def _request(self, fn, *args, timeout):
        if self.died is not None:
            raise SandboxStopped(self.died)
        sandbox = self.sandbox
        before = sandbox.trusted_seconds
        try:
            reply = fn(*args, timeout=max(timeout, 0.001))
        except SandboxDied as died:
            self._stop(died)
        finally:   # decoding the student's replies here: part of the notebook's wall clock, reported
            self.trusted_seconds += sandbox.trusted_seconds - before
        self._collect_output(reply)
        return reply

    def call(self, name, args, kwargs):
        timeout = self.test_deadline - time.monotonic() if self.test_deadline else self.limits.cell_timeout
        if timeout <= 0:
            self._stop(SandboxDied(f"a test cell exceeded the time limit of {self.limits.cell_timeout:g} s",
                                   "timeout"))
        self.where = ("call", name)
        reply = self._request(self.sandbox.call, name, args, kwargs, timeout=timeout)
        if not reply.get("ok"):
            raise _student_exception(name, reply.get("error") or {})
        if self.calls is not None and len(self.calls) < 200:
            self.calls.append((name, args, kwargs, reply.get("value")))
        return reply.get("value")

    def inject(self, ns):
        """Bind the student's names in the trusted namespace (proxies or plain values)."""
        if not self.names:
            return
        if self.died is not None:
            for name in self.names:
                ns.pop(name, None)
            return
        try:
            kinds = self._request(self.sandbox.kinds, self.names, timeout=10.0).get("value")
            kinds = kinds if isinstance(kinds, dict) else {}
        except SandboxStopped:
            for name in self.names:
                ns.pop(name, None)
            return
        for name in self.names:
            kind = kinds.get(name)
            if kind == "callable":
                ns[name] = StudentFunction(self, name)
            elif kind == "value":
                try:
                    reply = self._request(self.sandbox.get, name, timeout=10.0)
                except SandboxStopped:
                    ns.pop(name, None)
                    continue
                if reply.get("ok"):
                    ns[name] = reply.get("value")
                else:
                    ns.pop(name, None)
            else:
                ns.pop(name, None)

    # -- the notebook ------------------------------------------------------------------
    def run_trusted(self, code, ns, filename):
        """Execute instructor code; returns (outputs, exception or None)."""
        out = io.StringIO()
        exc = None
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                exec(compile(code, filename, "exec"), ns)
            except (SandboxStopped, Exception) as e:  # a failing test, or the student's process gone
                exc = e
        outputs = [{"output_type": "stream", "name": "stdout", "text": out.getvalue()}] if out.getvalue() else []
        return outputs, exc

    # -- the sandbox's life cycle ------------------------------------------------------
    def _start_sandbox(self):
        start = time.monotonic()
        self.notebook_deadline = start + self.limits.notebook_timeout
        try:
            self.sandbox = self.sandboxes.take(self.limits) if self.sandboxes else Sandbox(self.limits)
            self.sandbox_start_s = time.monotonic() - start
            self.sandbox.deadline = self.notebook_deadline
        except SandboxError as exc:
            self.died = SandboxDied(str(exc), "crash")
            self.restarts = replay.MAX_RESTARTS  # a sandbox that cannot start is not started again

    def _revive(self, entries):
        """After a death: a fresh sandbox with the cells that ran replayed, if the budget allows.

        Not after an output or tampering stop, once MAX_RESTARTS fresh sandboxes were used, or with less
        than MIN_SECONDS_LEFT of the notebook's deadline left. A replayed cell that uses a broken name is
        left out; a replay that fails itself ends the notebook (``self.died`` stays).
        """
        died = self.died
        if died is None or died.flag not in ("timeout", "crash", "memory") or self.restarts >= replay.MAX_RESTARTS \
                or self.notebook_deadline - time.monotonic() < replay.MIN_SECONDS_LEFT:
            return
        self.restarts += 1
        try:
            self.sandbox = Sandbox(self.limits, deadline=self.notebook_deadline)
        except SandboxError:
            self.restarts = replay.MAX_RESTARTS
            return
        self.deaths[-1][2] = True
        self.died = None
        outputs, self.cell_outputs = self.cell_outputs, None  # a replay's output is not shown twice
        try:
            for index in list(self.ran):
                code = entries[index]["cell"]["source"]
                if replay.uses(code, self.broken):
                    self.ran.remove(index)
                    continue
                self.where = ("cell", index)
                self._request(self.sandbox.run_cell, _transform(code), timeout=self.limits.cell_timeout)
        except SandboxStopped:
            self.restarts = replay.MAX_RESTARTS
            self.died = SandboxDied(f"{self.died.reason} (while the cells that ran before were replayed in a "
                                    "fresh sandbox)", self.died.flag)
            self.deaths.append([self.died, "", False])
        finally:
            self.cell_outputs = outputs

    def _record_death(self, entries, code, dead_before):
        """If the sandbox died since ``dead_before``: remember it, and the names it leaves broken."""
        if self.died is None or self.died is dead_before:
            return
        self.deaths.append([self.died, code, False])
        in_call = self.where[1] if self.where and self.where[0] == "call" else None
        if in_call is None and self.where and self.where[0] == "cell" and entries[self.where[1]]["role"] == "answer":
            # an answer cell: also what the instructor's solution of that part defines
            gid = entries[self.where[1]]["grade_id"]
            for c in self.source_nb["cells"]:
                if is_answer(c) and nbmeta(c).get("grade_id") == gid:
                    self.broken.update(replay.failed_names(cell_text(c.get("source")), None, self.died.reason))
        self.broken.update(replay.failed_names(code, in_call, self.died.reason))
        replay.spread(self.broken, [entries[i]["cell"]["source"] for i in self.ran])

    def grade(self, student_nb):
        """Run everything; return (cells with outputs, per-test results, flags).

        A cell or call that kills the sandbox costs only what depends on it (see :mod:`course_grader.replay`):
        a fresh sandbox replays the cells that ran, and later cells and tests that do not use a name the
        failure left undefined are run and graded as usual.
        """
        from . import solution_check  # not at import time: `python -m course_grader.solution_check` imports this
        entries, flags = assemble(self.source_nb, self.release_nb, student_nb)
        flags = [list(f) for f in flags]
        tests = {}
        ns = {"__name__": "__main__", SEED_NAME: self.seed}
        np.random.seed(self.seed % 2 ** 32)
        random.seed(self.seed)
        self.ran, self.broken, self.deaths, self.restarts = [], {}, [], 0
        self._start_sandbox()
        for n, entry in enumerate(entries):
            cell = entry["cell"]
            role = entry["role"]
            if role == "markdown":
                continue
            code = cell["source"]
            self.cell_outputs = outputs = []
            needs = replay.uses(code, self.broken) if role in ("answer", "student") else set()
            if needs:
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": replay.not_run_note(needs, self.broken)})
                for name in defined_names(code):
                    self.broken.setdefault(name, self.broken[sorted(needs)[0]])
            elif role in ("answer", "student", "instructor"):
                self._revive(entries)
            if role in ("answer", "student", "instructor") and self.died is None and not needs:
                self.where = ("cell", n)
                dead_before = self.died
                try:
                    reply = self._request(self.sandbox.run_cell, _transform(code),
                                          timeout=self.limits.cell_timeout)
                    if reply.get("ok"):
                        if reply.get("result") is not None:
                            outputs.append({"output_type": "execute_result", "execution_count": n + 1,
                                            "metadata": {}, "data": {"text/plain": str(reply["result"])}})
                    else:
                        err = reply.get("error") or {}
                        outputs.append({"output_type": "error", "ename": str(err.get("ename", "Error")),
                                        "evalue": str(err.get("evalue", "")),
                                        "traceback": [str(t) for t in err.get("traceback", [])]})
                except SandboxStopped:
                    pass
                if self.died is None:
                    self.ran.append(n)
                    for name in defined_names(code):  # redefined by a cell that ran: no longer broken
                        self.broken.pop(name, None)
                else:
                    self.where = ("cell", n)
                    self._record_death(entries, code, dead_before)
                    if role != "instructor" and not outputs:
                        outputs.append({"output_type": "stream", "name": "stdout",
                                        "text": f"[stopped: {self.died.reason}]\n"})
            if role in ("answer", "student") and self.died is not None and not outputs:
                outputs.append({"output_type": "stream", "name": "stdout",
                                "text": f"[not run: {self.died.reason}]\n"})
            if role == "instructor":
                self.inject(ns)
                self.cell_outputs = None
                touts, _ = self.run_trusted(code, ns, f"<instructor cell {n}>")
                if not outputs:
                    outputs.extend(touts)
            if role == "test":
                needs = used_names(code) & set(self.names) & set(self.broken)
                if needs:
                    result = graded_test(float(nbmeta(cell).get("points") or 0),
                                         replay.not_graded_message(needs, self.broken),
                                         hidden=bool(hidden_line_ranges(code)))
                    tests[entry["grade_id"]] = result
                    cell["outputs"] = outputs
                    cell["execution_count"] = n + 1
                    self.cell_outputs = None
                    continue
                self._revive(entries)
                self.inject(ns)
                self.test_deadline = time.monotonic() + self.limits.cell_timeout
                self.calls = []
                dead_before = self.died
                touts, exc = self.run_trusted(code, ns, f"<test {entry['grade_id']}>")
                self.test_deadline = None
                outputs[:0] = touts
                result = self._judge(entry, code, exc, dead_before)
                self._record_death(entries, code, dead_before)
                missing = solution_check.missing_instructor_name(exc, self.names)
                if missing and not result["passed"]:  # the assignment's fault: flagged, not a silent 0
                    result["message"] = solution_check.instructor_message(missing, self.source_nb)
                    flags.append(solution_check.instructor_flag(entry["grade_id"], missing, self.source_nb))
                lost = None if result["passed"] else solution_check.lost_unlocked_name(exc, self.source_nb)
                if lost:  # an unlocked instructor cell the student changed or deleted
                    result["message"] = (result["message"] + solution_check.lost_name_note(*lost))[:4000]
                    flags.append(solution_check.lost_name_flag(entry["grade_id"], *lost))
                explain_failure(result, self.calls)
                self.calls = None
                tests[entry["grade_id"]] = result
            cell["outputs"] = outputs
            cell["execution_count"] = n + 1
            self.cell_outputs = None
        if self.sandbox is not None:
            self.sandbox.close()
        flags.extend(self.report_flags)
        if self.died is not None and not any(d[0] is self.died for d in self.deaths):
            self.deaths.append([self.died, "", False])
        for died, _, revived in self.deaths:
            note = ("; the notebook went on in a fresh sandbox without it: the parts that do not depend on it "
                    "were graded") if revived else ""
            flags.append([died.flag, died.reason + note])
        self._integrity(entries, tests, flags)
        for entry in entries:
            if entry["role"] == "test":
                entry["cell"]["outputs"] = [o for o in entry["cell"]["outputs"] if o.get("name") != "stderr"]
                res = tests[entry["grade_id"]]
                if not res["passed"]:
                    entry["cell"]["outputs"].append({"output_type": "error", "ename": "TestFailed",
                                                     "evalue": res["message"], "traceback": [res["message"]]})
        return entries, tests, flags

    def _judge(self, entry, code, exc, dead_before):
        meta = nbmeta(entry["cell"])
        points = float(meta.get("points") or 0)
        hidden = hidden_line_ranges(code)
        result = graded_test(points, hidden=bool(hidden))
        if exc is None and self.died is not None and self.died is not dead_before:
            exc = SandboxStopped(self.died)  # the student's process died while this test ran
        if exc is None:
            return result
        result["passed"] = False
        result["points"] = 0.0
        if isinstance(exc, SandboxStopped):
            result["message"] = f"not graded: {exc.died.reason}"
            return result
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == f"<test {entry['grade_id']}>"]
        line = frames[-1].lineno if frames else None
        in_hidden = line is not None and any(a <= line <= b for a, b in hidden)
        if in_hidden:
            result["failed_in_hidden"] = True
            # only what the test's own checks call public (case and kind of failure, no expected value)
            summary = getattr(exc, "public_summary", None)
            result["message"] = (f"{HIDDEN_MESSAGE}: {summary}"[:1000] if isinstance(summary, str) and summary
                                 else HIDDEN_MESSAGE)
            return result
        if self.died is not None and isinstance(exc, NameError) and getattr(exc, "name", None) in self.names:
            result["message"] = f"not graded: {self.died.reason}"
            return result
        student = getattr(exc, "student_error", None)
        if student:
            msg = f"your function {student['function']} raised {student.get('ename')}: {student.get('evalue')}"
            tb = [t for t in student.get("traceback", []) if t.strip()]
            if tb:
                msg += "\n" + "".join(tb[1:-1]).rstrip()
        else:
            msg = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        result["message"] = msg[:3000]
        return result

    def _integrity(self, entries, tests, flags):
        """Answers that call, copy or run cnnmath's code earn 0 for the tests that use them (always)."""
        stubs = {nbmeta(c).get("grade_id"): cell_text(c.get("source"))
                 for c in self.release_nb["cells"] if is_answer(c)}
        cells = [{"role": e["role"], "grade_id": e.get("grade_id"), "source": e["cell"]["source"],
                  "stub": stubs.get(e.get("grade_id"), "")} for e in entries]
        owners = {name: nbmeta(c).get("grade_id") for c in self.source_nb["cells"] if is_answer(c)
                  for name in defined_names(cell_text(c.get("source")))}
        new_flags, lost = integrity.judge_cells(cells, self.import_hits, self.copy_hits, self.copy_matches,
                                                self.library, owners)
        flags.extend(new_flags)
        for gid in lost:
            tests[gid].update(passed=False, points=0.0,
                              message="0 points: the answer this test checks uses or copies cnnmath, "
                                      "which answers must not do")


def graded_test(max_points, failure=None, hidden=False):
    """One test's result: full points, or 0 with ``failure`` as the message."""
    return {"points": max_points if failure is None else 0.0, "max": max_points, "passed": failure is None,
            "message": failure or "", "hidden": hidden, "failed_in_hidden": False}


def explain_failure(result, calls):
    """Name the likely misconception of a failed test (course_grader.misconceptions) in its message."""
    if result["passed"] or not calls or result["message"].startswith("not graded"):
        return
    from .misconceptions import diagnose_calls
    found = diagnose_calls(calls)
    if found:
        result["misconception"] = found[0]
        # the grader's sentence replaces the test's own (shorter) hint, if it gave one
        message = result["message"].split("\nLikely misconception:")[0]
        result["message"] = (message + "\nLikely misconception: " + found[1])[:4000]


def scrub(value):
    """Lone surrogates (printed or raised by the student) replaced, so every later writer can encode them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


_scrub = scrub  # the older name (tests/test_grader_hardening.py)
