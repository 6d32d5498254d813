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

from . import integrity, sandbox_report
from .notebook import (assemble, cell_text, defined_names, hidden_line_ranges, is_answer, nbmeta,
                       solution_names, used_names)
from .sandbox import Sandbox, SandboxDied, SandboxError

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
    ``sandboxes``: a :class:`SandboxSource` to take the sandbox from (default: a new sandbox).
    """

    def __init__(self, source_nb, release_nb, limits, library=None, sandboxes=None):
        self.library = library
        self.sandboxes = sandboxes
        self.sandbox_start_s = 0.0
        self.source_nb = source_nb
        self.release_nb = release_nb
        self.limits = limits
        self.names = sorted(solution_names(source_nb))
        self.sandbox = None
        self.died = None
        self.cell_outputs = None
        self.test_deadline = None
        self.calls = None  # (name, args, kwargs, value) of the running test: misconceptions
        self.where = None  # ("cell", entry index) or ("call", function name) being run in the sandbox
        self.import_hits = set()  # where the student's process tried to import cnnmath
        self.copy_hits = set()    # where it compiled (exec) code that uses or copies cnnmath
        self.report_flags = []    # flags from the sandbox's reports that do not stop it (output truncated)
        self.trusted_seconds = 0.0  # spent decoding the student's replies (Sandbox.trusted_seconds)

    # -- sandbox calls -----------------------------------------------------------------
    def _collect_output(self, reply):
        """File the supervisor's report of one request (course_grader.sandbox_report): imports of cnnmath
        and copies compiled at run time mark where they happened; output past the notebook's limit is
        truncated, marked and flagged while grading goes on; the memory limit stops the sandbox."""
        if reply.get("forbidden_imports") and self.where is not None:
            self.import_hits.add(self.where)
        if self.where is not None and sandbox_report.compiled_copy(reply, self.library):
            self.copy_hits.add(self.where)
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

    def grade(self, student_nb):
        """Run everything; return (cells with outputs, per-test results, flags)."""
        entries, flags = assemble(self.source_nb, self.release_nb, student_nb)
        flags = [list(f) for f in flags]
        tests = {}
        ns = {"__name__": "__main__"}
        np.random.seed(0)
        random.seed(0)
        start = time.monotonic()
        try:
            self.sandbox = self.sandboxes.take(self.limits) if self.sandboxes else Sandbox(self.limits)
            self.sandbox_start_s = time.monotonic() - start
            self.sandbox.deadline = start + self.limits.notebook_timeout
        except SandboxError as exc:
            self.died = SandboxDied(str(exc), "crash")
        for n, entry in enumerate(entries):
            cell = entry["cell"]
            role = entry["role"]
            if role == "markdown":
                continue
            code = cell["source"]
            self.cell_outputs = outputs = []
            if role in ("answer", "student", "instructor") and self.died is None:
                self.where = ("cell", n)
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
                self.inject(ns)
                self.test_deadline = time.monotonic() + self.limits.cell_timeout
                self.calls = []
                dead_before = self.died
                touts, exc = self.run_trusted(code, ns, f"<test {entry['grade_id']}>")
                self.test_deadline = None
                outputs[:0] = touts
                result = self._judge(entry, code, exc, dead_before)
                explain_failure(result, self.calls)
                self.calls = None
                tests[entry["grade_id"]] = result
            cell["outputs"] = outputs
            cell["execution_count"] = n + 1
            self.cell_outputs = None
        if self.sandbox is not None:
            self.sandbox.close()
        flags.extend(self.report_flags)
        if self.died is not None:
            flags.append([self.died.flag, self.died.reason])
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
            result["message"] = HIDDEN_MESSAGE
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
        """Answers that call or copy cnnmath earn 0 for the tests that use them."""
        stubs = {nbmeta(c).get("grade_id"): cell_text(c.get("source"))
                 for c in self.release_nb["cells"] if is_answer(c)}
        bad_names = set()
        imported_by = {name for kind, name in self.import_hits if kind == "call"}
        copied_by = {name for kind, name in self.copy_hits if kind == "call"}
        for index, entry in enumerate(entries):
            if entry["role"] not in ("answer", "student"):
                continue
            code = entry["cell"]["source"]
            stub = stubs.get(entry.get("grade_id"), "")
            what = None
            if integrity.mentions_cnnmath(code, stub):
                what = "uses the reference library cnnmath"
            elif integrity.copied_from_cnnmath(code, stub, self.library):
                what = "copies code from the reference library cnnmath"
            elif ("cell", index) in self.import_hits or (imported_by and defined_names(code) & imported_by):
                what = "tries to import the reference library cnnmath"
            elif ("cell", index) in self.copy_hits or (copied_by and defined_names(code) & copied_by):
                what = "runs code copied from the reference library cnnmath (built at run time)"
            if what:
                where = f"answer '{entry['grade_id']}'" if entry["role"] == "answer" else "a cell you added"
                flags.append(["cnnmath", f"{where} {what}"])
                bad_names |= defined_names(code)
        if not bad_names:
            return
        # answers whose code calls a flagged helper are tainted too
        for entry in entries:
            if entry["role"] == "answer" and used_names(entry["cell"]["source"]) & bad_names:
                bad_names |= defined_names(entry["cell"]["source"])
        for entry in entries:
            if entry["role"] == "test" and used_names(entry["cell"]["source"]) & bad_names:
                res = tests[entry["grade_id"]]
                res.update(passed=False, points=0.0,
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
        result["message"] = (result["message"] + "\nLikely misconception: " + found[1])[:4000]


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
