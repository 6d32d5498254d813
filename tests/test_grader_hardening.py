"""Holes the bad-submission corpus (tests/grader_corpus) found in the grader, each pinned by a direct test.

* one student's fork bomb must not starve a sandbox graded at the same time (RLIMIT_NPROC is per uid);
* a reply the student's process forges on the protocol pipe is detected (request numbers);
* a student exception can't end a test's iteration quietly (StopIteration);
* copies of cnnmath with every identifier renamed are still copies, honest reference answers are not;
* UTF-16 without a byte-order mark and lone surrogates are read, not rejected or crashed on.
"""
import codecs
import json
import multiprocessing
import time

import pytest

from course_grader import integrity
from course_grader.notebook import decode_bytes, read_submission
from course_grader.runner import _scrub, _student_exception
from course_grader.sandbox import Limits, Sandbox, SandboxDied
from tests.grader_helpers import FORK_BOMB, REPO, needs_bwrap


def _bomb(limits):
    with Sandbox(limits) as sb:
        try:
            sb.run_cell(FORK_BOMB, timeout=limits.cell_timeout)
        except SandboxDied:
            pass


@needs_bwrap
def test_a_fork_bomb_does_not_starve_another_students_sandbox():
    limits = Limits(cell_timeout=5, notebook_timeout=30)
    other = multiprocessing.get_context("fork").Process(target=_bomb, args=(limits,))   # like a pool worker
    other.start()
    try:
        time.sleep(2.0)   # the bomb has used up its process limit by now
        with Sandbox(limits) as sb:
            reply = sb.run_cell("import threading, subprocess, sys\n"
                                "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
                                "print(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True,"
                                " text=True).stdout.strip())\n", timeout=10)
        assert reply["ok"], reply.get("error")
        assert reply["stdout"].strip() == "42"
    finally:
        other.join(30)
        if other.is_alive():
            other.kill()
            other.join()


@needs_bwrap
def test_a_forged_reply_is_detected():
    with Sandbox(Limits(cell_timeout=10, notebook_timeout=30)) as sb:
        sb.run_cell("import os, struct, sys\n"
                    "def f():\n"
                    "    payload = sys._getframe(1).f_globals['dumps']({'ok': True, 'value': 42, 'stdout': '', 'stderr': '',"
                    " 'output_exceeded': False})\n"
                    "    for fd in range(3, 64):\n"
                    "        try:\n"
                    "            os.write(fd, struct.pack('>Q', len(payload)) + payload)\n"
                    "        except OSError:\n"
                    "            pass\n"
                    "    return 0\n")
        with pytest.raises(SandboxDied) as died:
            sb.call("f", (), {}, timeout=10)
        assert died.value.flag == "wire" and "a reply the grader did not ask for" in died.value.reason


def test_student_exceptions_cannot_end_a_test_quietly():
    for ename in ("StopIteration", "StopAsyncIteration", "AssertionError", "SystemExit", "KeyboardInterrupt",
                  "GeneratorExit", "NoSuchError"):
        exc = _student_exception("f", {"ename": ename, "evalue": "boom"})
        assert type(exc) is RuntimeError and ename in str(exc)
    assert type(_student_exception("f", {"ename": "ValueError", "evalue": "bad"})) is ValueError


def _reference_answers():
    out = {}
    for path in sorted(REPO.glob("solutions/*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("solution"):
                out[f"{path.stem}/{meta['grade_id']}"] = "".join(cell["source"])
    return out


def test_renamed_copies_of_cnnmath_are_copies_and_honest_answers_are_not():
    from tests.grader_corpus.cases import copied_conv2d_source, rename_identifiers
    copy = copied_conv2d_source()
    assert integrity.copied_from_cnnmath(copy)
    assert integrity.copied_from_cnnmath(rename_identifiers(copy))
    answers = _reference_answers()
    assert answers, "no reference answers found"
    flagged = [name for name, code in answers.items() if integrity.copied_from_cnnmath(code)]
    assert flagged == [], f"honest reference answers flagged as copies of cnnmath: {flagged}"


def test_odd_encodings_are_read(tmp_path):
    text = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                       "cells": [{"cell_type": "code", "metadata": {}, "source": "x = 'caf\u00e9'\n"}]})
    for data in (text.encode("utf-16-le"), text.encode("utf-16-be"), codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
                 codecs.BOM_UTF8 + text.encode()):
        assert decode_bytes(data) == text
    path = tmp_path / "nb.ipynb"
    path.write_bytes(text.replace("caf\\u00e9", "caf\\udce9").encode())   # a lone surrogate
    nb, _ = read_submission(path)
    nb["cells"][0]["source"].encode("utf-8")   # encodable: the surrogate was replaced
    assert _scrub({"a": ["ok", "bad \udce9"]}) == {"a": ["ok", "bad ?"]}
