"""The feedback loop a student sees (issue 12, points 1, 2, 3 and 7).

* ``nbgrader validate`` (the real command, once for a handful of released conv2d notebooks) shows
  every message whole (validate cuts lines), the key numbers first, and names a flipped kernel or a
  forgotten padding; an answer that imports or calls cnnmath (``import cnnmath as c``,
  ``from cnnmath import ...``, ``__import__``) fails validate with one clear line.
* The self-check (``python -m course_grader.selfcheck``) reports the same pass/fail per test cell
  as validate on the same notebooks, with the same messages.
* Hidden tests, graded through the real job pipeline (jobs.Job -> work.grade_job), say which case
  failed and how, without expected values; their cases are drawn per student (seeded by
  sha256("<student>/<assignment>")) and are the same on regrade; for every assignment a typical
  wrong answer that passes the visible tests gets such a case-naming message.
"""
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.grader_helpers import REPO, grade_notebook, needs_bwrap, reference_answers, student_notebook
from tests.test_exercises import WRONG

# the corpus's typical wrong answers: (assignment, label) -> (answer cell, old, new, graded part)
WRONG_BY_LABEL = {(name, w[0]): tuple(w[1:]) for name, variants in WRONG.items() for w in variants}

NBGRADER = [sys.executable, "-u", "-m", "nbgrader"]
VALIDATE_WIDTH = 90 - 3  # nbgrader's Validator.width minus the "..." it cuts a longer line to


def _load(kind, name):
    folder = "solutions" if kind == "source" else "exercises"
    return json.loads((REPO / folder / name / f"{name}.ipynb").read_text(encoding="utf-8"))


def _replace(answer, old, new):
    assert old in answer, f"{old!r} is not in the reference answer"
    return answer.replace(old, new)


# conv2d notebooks a student could submit: answers edited from the reference solution
def _conv2d_students():
    ans = reference_answers(_load("source", "conv2d"))
    flipped = _replace(ans["cross_correlate2d"], "out += k[m, n] *", "out += k[kh - 1 - m, kw - 1 - n] *")
    no_padding = _replace(ans["conv2d"], "(padding, padding), (padding, padding)", "(0, 0), (0, 0)")
    params = ans["conv2d_params"]
    return {
        "right": ans,
        "wrong": dict(ans, cross_correlate2d=flipped, conv2d=no_padding),
        "alias": dict(ans, conv2d_params="import cnnmath as c\n\n\n" + _replace(
            params, "return (f * f * c_in + 1) * c_out", "return c.conv_params(c_in, c_out, (f, f))")),
        "from": dict(ans, conv2d_params="from cnnmath import conv_params\n\n\n" + _replace(
            params, "return (f * f * c_in + 1) * c_out", "return conv_params(c_in, c_out, (f, f))")),
        "plain": dict(ans, conv2d_params="import cnnmath\n\n\n" + _replace(
            params, "return (f * f * c_in + 1) * c_out", "return cnnmath.conv_params(c_in, c_out, (f, f))")),
        "offbyone": dict(ans, conv2d=_replace(ans["conv2d"], "h_out = (h - kh) // stride + 1",
                                              "h_out = (h - kh) // stride")),
        "dunder": dict(ans, conv2d_params=_replace(
            params, "return (f * f * c_in + 1) * c_out",
            "return __import__('cnn' + 'math').conv_params(c_in, c_out, (f, f))")),
    }


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """One `nbgrader validate` run over every conv2d notebook: name -> (its output, its path)."""
    tmp = tmp_path_factory.mktemp("validate")
    release = _load("release", "conv2d")
    paths = {}
    for name, answers in _conv2d_students().items():
        paths[name] = tmp / f"{name}.ipynb"
        paths[name].write_text(json.dumps(student_notebook(release, answers)), encoding="utf-8")
    env_path = str(Path(sys.executable).parent)
    proc = subprocess.run(NBGRADER + ["validate", *map(str, paths.values())], cwd=tmp, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
                          env={"PATH": env_path + ":/usr/bin:/bin", "HOME": str(tmp)})
    chunks = re.split(r"\[ValidateApp \| INFO\] Validating '([^']+)'\n", proc.stdout)
    by_path = {Path(chunks[i]).stem: chunks[i + 1] for i in range(1, len(chunks), 2)}
    assert set(by_path) == set(paths), proc.stdout[-3000:]
    return {name: (by_path[name], paths[name]) for name in paths}


def _error_text(output):
    """The messages validate printed: the lines from each exception line to the next blank line."""
    blocks = re.findall(r"\n    (?:CheckFailed|AssertionError): (.*?)\n\s*\n", output, re.S)
    return [b.replace("\n    ", "\n") for b in blocks]


def _failed_ids(output, notebook):
    """grade_ids of the test cells validate reports as failed (found by their docstrings)."""
    ids = []
    for cell in notebook["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            doc = "".join(cell["source"]).lstrip()[:60]
            pattern = r"The following cell failed:\n\n    " + re.escape(doc[:40])
            if re.search(pattern, output):
                ids.append(meta["grade_id"])
    return ids


def test_validate_shows_the_whole_message_key_numbers_first(validated):
    """Validate keeps every line of the message: expected/got, where, how many, the arrays, the hint."""
    import cnnmath

    output, _ = validated["wrong"]
    messages = _error_text(output)
    first = next(m for m in messages if m.startswith("cross_correlate2d(X_SEED, K_SEED)"))
    x_seed = np.array([[2, 0, 1, 2], [1, 1, 0, 1], [0, 2, 1, 0], [1, 0, 2, 1]], dtype=float)
    k_seed = np.array([[1, -1, 0], [0, 1, -1], [1, 0, 1]], dtype=float)
    flipped = cnnmath.convolve(x_seed, k_seed, mode="valid")  # what a flipped kernel gives
    lines = first.splitlines()
    assert lines[0] == "cross_correlate2d(X_SEED, K_SEED): wrong values"
    assert lines[1] == f"expected 4.0, got {float(flipped[0, 0])!r}"
    assert lines[2] == "at index (0, 0)"
    assert lines[3] == f"{int(np.sum(flipped != [[4, 0], [4, 3]]))} of 4 values differ"
    assert "Likely misconception: the kernel is flipped" in first
    padding = next(m for m in messages if m.startswith("conv2d(4x4, 3x3, padding=1)"))
    assert "got shape (1, 1, 2, 2)" in padding and "the padding was left out" in padding
    off = _error_text(validated["offbyone"][0])
    assert off and all("Likely misconception: the output size is off by one" in m for m in off), off
    # no line of a message was cut (validate cuts a line at VALIDATE_WIDTH and appends "...")
    exception_line = "    CheckFailed: " + lines[0]
    assert exception_line in output.splitlines() and len(exception_line) < VALIDATE_WIDTH
    for message in messages:
        assert not [l for l in message.splitlines() if l.endswith("...") or len("    " + l) >= VALIDATE_WIDTH], message


def test_validate_refuses_answers_that_use_cnnmath(validated):
    """import ... as, from ... import and __import__ each fail validate with one clear line."""
    for name in ("plain", "alias", "from", "dunder"):
        output, _ = validated[name]
        assert "VALIDATION FAILED ON 1 CELL(S)" in output, (name, output[-2000:])
        messages = _error_text(output)
        assert len(messages) == 1 and messages[0].startswith("answers must not use cnnmath: "), messages
        assert "conv2d_params" in messages[0] and len(messages[0].splitlines()) == 1
    assert "Success! Your notebook passes all the tests." in validated["right"][0]


def test_selfcheck_reports_what_validate_reports(validated):
    """The self-check fails exactly the test cells validate fails, with the same messages."""
    from course_grader.misconceptions import SENTENCES

    release = _load("release", "conv2d")
    for name, (output, path) in validated.items():
        proc = subprocess.run([sys.executable, "-m", "course_grader.selfcheck", str(path)], text=True,
                              capture_output=True, timeout=120)
        failed = re.findall(r"^FAILED  (\S+)", proc.stdout, re.M)
        assert failed == _failed_ids(output, release), (name, proc.stdout, output[-3000:])
        assert proc.returncode == (1 if failed else 0)
        for message in _error_text(output):  # the same lines; a hint may become grading's sentence
            message = message.split("\nLikely misconception:")[0]
            assert message.replace("\n", "\n    ") in proc.stdout, (name, message, proc.stdout)
        if name == "wrong":  # the misconceptions grading names (course_grader.misconceptions)
            for key in ("flipped_kernel", "padding_forgotten"):
                assert "Likely misconception: " + SENTENCES[key] in proc.stdout, (key, proc.stdout)
    assert re.search(r"right.ipynb: 4 of 4 tests pass", subprocess.run(
        [sys.executable, "-m", "course_grader.selfcheck", str(validated["right"][1])],
        text=True, capture_output=True, timeout=120).stdout)


# -- hidden tests ---------------------------------------------------------------------------------
# For every assignment a typical wrong answer whose mistake in one graded part only that part's hidden
# test catches: (answer cell, old, new, the graded part, words its hidden message must contain).
HIDDEN_WRONG = {
    "conv1d": ("conv1d_layer", "np.float32", "np.float64", "test_conv1d_layer", "wrong dtype (got float64)"),
    "conv2d": ("cross_correlate2d", "np.float32", "np.float64", "test_cross_correlate2d_seed_example",
               "wrong dtype (got float64)"),
    "output_size": (*WRONG_BY_LABEL["output_size", "hard-coded-visible-answers"], "wrong value"),
    "pooling": ("avg_pool2d", "np.float32", "np.float64", "test_avg_pool2d", "wrong dtype (got float64)"),
    "conv_backward": ("conv2d_forward", "np.float32", "np.float64", "test_conv2d_forward",
                      "wrong dtype (got float64)"),
    "conv_transpose": ("conv_transpose2d", "np.float32", "np.float64", "test_conv_transpose2d_stamps",
                       "wrong dtype (got float64)"),
    "receptive_field": ("network_summary", "(w + 2 * p - k)", "(h + 2 * p - k)",  # square inputs assumed
                        "test_network_summary_seed_table", "wrong values"),
    "conv3d": ("conv3d", "s = (stride,) * 3", "s = (1,) * 3", "test_conv3d", "wrong shape"),  # stride ignored
    "local_tiled": ("tiled_conv2d", "(padding, padding), (padding, padding)", "(padding, 0), (padding, padding)",
                    "test_tiled_conv2d", "wrong shape"),  # padding on one side only (height)
    "im2col": ("conv2d_gemm_backward", "np.float32", "np.float64", "test_conv2d_gemm_backward",
               "wrong dtype (got float64)"),
    "full_network": ("kernel_backward", "kh, kw = np.shape(k)", "kh = kw = np.shape(k)[0]",  # square kernel
                     "test_kernel_backward", "wrong shape"),
    "activations_losses": (*WRONG_BY_LABEL["activations_losses", "hard-coded-visible-answers"], "wrong value"),
    # the -1 and +1 "cancelled" inside the floor: right at dilation 1 and stride 1 (the visible dilation cases)
    "derivations": ("output_size_formula", "sp.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1",
                    "sp.floor((n + 2 * p - d * (k - 1)) / s)", "test_output_size_formula_dilation", "wrong at"),
}
LIMITS = dict(cell_timeout=30, notebook_timeout=300)


def _seed(student, assignment):
    return int.from_bytes(hashlib.sha256(f"{student}/{assignment}".encode()).digest()[:8], "big")


def _hidden_lines(source_nb):
    """Every line of every hidden block of a source notebook (longer than a few characters)."""
    lines = set()
    for cell in source_nb["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for block in re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", text, re.S):
            lines |= {l.strip() for l in block.splitlines() if len(l.strip()) > 12}
    return lines


@pytest.fixture(scope="module")
def hidden_graded(tmp_path_factory):
    """Each assignment's typical wrong answer graded once through the job pipeline, and the conv2d one
    for two more students and once more for the first (a regrade)."""
    from course_grader.sandbox import Limits

    tmp = tmp_path_factory.mktemp("hidden")
    results = {}
    for name, (cell, old, new, _part, _words) in HIDDEN_WRONG.items():
        source, release = _load("source", name), _load("release", name)
        answers = reference_answers(source)
        answers[cell] = _replace(answers[cell], old, new)
        path = tmp / f"{name}.ipynb"
        path.write_text(json.dumps(student_notebook(release, answers)), encoding="utf-8")
        students = ("ada", "grace", "ada") if name == "conv2d" else ("ada",)
        for n, student in enumerate(students):
            results[name, student, n] = grade_notebook(source, release, path, Limits(**LIMITS),
                                                       assignment=name, student=student)
    return results


@needs_bwrap
def test_hidden_cases_are_drawn_per_student_and_kept_on_regrade(hidden_graded):
    """The failing hidden case is the one the student's seed draws; another student's differs."""
    part = HIDDEN_WRONG["conv2d"][3]
    messages = {}
    for student, n in (("ada", 0), ("grace", 1), ("ada", 2)):
        messages[student, n] = hidden_graded["conv2d", student, n]["tests"][part]["message"]
        # the hidden test's draws for this student: trial 0 (float64) passes, trial 1 (float32) fails
        rng = np.random.default_rng([_seed(student, "conv2d"), 2024])
        shapes = []
        for trial in range(2):
            h, w = rng.integers(3, 9, size=2)
            kh, kw = rng.integers(1, 4, size=2)
            shapes.append(((int(h), int(w)), (int(kh), int(kw))))
            rng.standard_normal((h, w)), rng.standard_normal((kh, kw))
        (x_shape, k_shape) = shapes[1]
        assert messages[student, n] == (f"hidden test failed: cross_correlate2d(x {x_shape} float32, "
                                         f"k {k_shape}): wrong dtype (got float64)"), messages[student, n]
    assert messages["ada", 0] == messages["ada", 2]
    assert messages["ada", 0] != messages["grace", 1]


@needs_bwrap
@pytest.mark.parametrize("name", sorted(HIDDEN_WRONG))
def test_hidden_failure_names_case_and_kind_without_expected_values(hidden_graded, name):
    """A typical wrong answer's hidden failure names its case and kind; no expected value, no test source."""
    cell, old, new, part, words = HIDDEN_WRONG[name]
    result = hidden_graded[name, "ada", 0]
    failed = {g for g, r in result["tests"].items() if not r["passed"]}
    assert part in failed, (name, result["tests"])
    message = result["tests"][part]["message"]
    assert message.startswith("hidden test failed: ") and words in message, message
    case = message[len("hidden test failed: "):].split(": ")[0]
    assert "(" in case and len(case) > 8, message  # a call with its arguments: the case
    assert "expected" not in message.lower(), message
    for line in _hidden_lines(_load("source", name)):
        assert line not in message, (line, message)
    assert result["score"] < sum(r["max"] for r in result["tests"].values())
