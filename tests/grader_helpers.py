"""Shared helpers for the course-grader tests: the repository and the `course-grader` command,
nbgrader cell accessors, reference answers and points of a source notebook, a temporary course,
and the attack programs more than one suite runs."""
import copy
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("course-grader"))
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


def nbg(cell):
    """A cell's nbgrader metadata (empty if it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {})


def cell_text(cell):
    """A cell's source as one string (nbformat allows a list of lines or a string)."""
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def reference_answers(source_nb):
    """grade_id -> the reference answer without the BEGIN/END SOLUTION markers."""
    return {nbg(c)["grade_id"]: "".join(l for l in cell_text(c).splitlines(True)
                                        if "### BEGIN SOLUTION" not in l and "### END SOLUTION" not in l)
            for c in source_nb["cells"] if nbg(c).get("solution")}


def graded_points(source_nb):
    """grade_id -> points of every graded test cell (graded cells that are not answers)."""
    return {nbg(c)["grade_id"]: float(nbg(c)["points"]) for c in source_nb["cells"]
            if nbg(c).get("grade") and not nbg(c).get("solution")}


def student_notebook(release_nb, answers):
    """A copy of the released notebook with the cells of ``answers`` (grade_id -> source) filled in."""
    nb = copy.deepcopy(release_nb)
    for c in nb["cells"]:
        if nbg(c).get("grade_id") in answers:
            c["source"] = answers[nbg(c)["grade_id"]]
    return nb


def flipped_conv2d(answer):
    """The conv2d answer turned into a true convolution (flipped kernel): a classic mistake."""
    return (answer.rstrip() + "\n\n\n_conv2d_cross = conv2d\n\n\n"
            "def conv2d(x, w, b=None, stride=1, padding=0):\n"
            "    return _conv2d_cross(x, np.asarray(w)[..., ::-1, ::-1], b, stride, padding)\n")


def run(course, *args, ok=True, timeout=600):
    """Run `course-grader --course-dir course *args`; with ``ok``, assert it succeeded."""
    proc = subprocess.run([CLI, "--course-dir", str(course), *args], capture_output=True, text=True, timeout=timeout)
    if ok:
        assert proc.returncode == 0, f"course-grader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def new_course(tmp_path_factory, prefix, assignments):
    """A temporary course folder with the repository's nbgrader_config.py and the source folders of
    ``assignments`` copied in (not yet released); skips the test if a source notebook is missing."""
    for a in assignments:
        source = REPO / "solutions" / a / f"{a}.ipynb"
        if not source.exists():
            pytest.skip(f"{source} does not exist yet")
    root = tmp_path_factory.mktemp(prefix)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    for a in assignments:
        shutil.copytree(REPO / "solutions" / a, root / "solutions" / a)
    return root


# A student cell that forks until the process limit is reached (the children sleep).
FORK_BOMB = """import os, time
while True:
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
    except OSError:
        pass
"""


# -- a small course for the batch tests (executors, faults, resume) -------------------------
FAST = "output_size"  # the quickest assignment to grade: the batch tests grade it many times


def marker_cell(marker, seconds=0.0):
    """Student code that starts a process carrying ``marker`` on its command line (the test finds the
    grading worker through it) and, optionally, waits ``seconds``."""
    return ("import subprocess as _sp, sys as _sys, time as _time\n"
            f"_sp.Popen([_sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n"
            f"_time.sleep({seconds!r})\n")


def batch_course(tmp_path_factory, prefix, students, db_url=None):
    """A course with FAST released and ``students`` collected: name -> "correct", "blank" or a dict
    grade_id -> extra code put before that reference answer. Returns (root, expected) with expected
    (student, grade_id) -> points from the source notebook (0 for "blank", full otherwise)."""
    import json
    root = new_course(tmp_path_factory, prefix, [FAST])
    if db_url:
        with open(root / "nbgrader_config.py", "a") as f:
            f.write(f"\nc.CourseDirectory.db_url = {db_url!r}\n")
    run(root, "release", FAST)
    source = json.loads((REPO / "solutions" / FAST / f"{FAST}.ipynb").read_text())
    release = json.loads((root / "exercises" / FAST / f"{FAST}.ipynb").read_text())
    sol, points = reference_answers(source), graded_points(source)
    expected = {}
    for name, kind in students.items():
        d = root / "incoming" / name / FAST
        d.mkdir(parents=True)
        if kind == "blank":
            nb = release
        else:
            extra = kind if isinstance(kind, dict) else {}
            nb = student_notebook(release, {g: extra.get(g, "") + a for g, a in sol.items()})
        (d / f"{FAST}.ipynb").write_text(json.dumps(nb))
        for gid, p in points.items():
            expected[(name, gid)] = 0.0 if kind == "blank" else p
    run(root, "collect", FAST, "--from-folder", str(root / "incoming"))
    return root, expected


def graded_parts(root, out="export"):
    """[((student, grade_id), score)] of FAST from `course-grader export --per-part` (one row per grade)."""
    run(root, "export", "--per-part", "--out", str(root / out))
    return [((r["student_id"], r["grade_id"]), float(r["score"])) for r in read_csv(root / out / "parts.csv")
            if r["assignment"] == FAST]


def assert_each_grade_once(rows, expected):
    """Every expected grade is in the gradebook exactly once, with the expected points."""
    keys = [k for k, _ in rows]
    assert len(keys) == len(set(keys)), "a grade is in the gradebook twice"
    assert dict(rows) == expected


def processes_with(marker):
    """pids of the processes whose command line contains ``marker``."""
    import os
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def grading_worker_of(pid):
    """The grading worker above a sandboxed process: the first ancestor that is neither bubblewrap nor
    the sandbox's Python (``python -S -E -s -B -c``), or None."""
    def stat(p):
        with open(f"/proc/{p}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{p}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        return ppid, argv
    try:
        ppid, _ = stat(pid)
        while ppid > 1:
            parent_ppid, argv = stat(ppid)
            sandbox = argv[0].endswith(b"bwrap") or argv[1:6] == [b"-S", b"-E", b"-s", b"-B", b"-c"]
            if not sandbox and not any(b"time.sleep(120)" in a for a in argv):
                return ppid
            ppid = parent_ppid
    except (OSError, IndexError, ValueError):
        return None
    return None


def grade_notebook(source, release, path, limits, assignment="assignment", student="student"):
    """Grade one notebook file through the real job pipeline (jobs.Job -> work.grade_job), no course.

    Returns the per-student results record (``tests``, ``flags``, ``score``, ``messages``...).
    """
    from pathlib import Path

    from course_grader import integrity
    from course_grader.jobs import Job, TestPayload
    from course_grader.work import grade_job

    name = Path(path).stem
    payload = TestPayload(assignment=assignment, notebook=name, source=source, release=release,
                          shingles=integrity.library_shingles(),
                          normalized_shingles=integrity.library_normalized_shingles(), payload_id=name)
    job = Job(assignment=assignment, student=student, notebook=name, submission=Path(path).read_bytes(),
              submitted_as=Path(path).name, payload_id=name, limits=limits, content_hash="-")
    return grade_job(job, payload).record()


def grade_reference_and_wrong_answers(assignment, wrong_answers, sentences, folder, lost=None):
    """Grade an assignment's reference answers, then its answers with every wrong edit applied, in the sandbox.

    ``wrong_answers``: ``{answer cell: (old text, new text, graded part, misconception key)}``. Asserts the
    reference answers earn every point with no flag, the wrong notebook loses exactly the parts in ``lost``
    (default: every part) with no flag, and each wrong part's message names its misconception
    (``sentences[key]``). Returns the wrong notebook's record.
    """
    from pathlib import Path

    from course_grader.sandbox import Limits

    source = json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    release = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text())
    limits = Limits(cell_timeout=20, notebook_timeout=120)
    honest = Path(folder) / "honest" / f"{assignment}.ipynb"
    honest.parent.mkdir(parents=True)
    honest.write_text(json.dumps(student_notebook(release, reference_answers(source))))
    record = grade_notebook(source, release, honest, limits, assignment=assignment)
    points = graded_points(source)
    assert record["flags"] == [] and {g: r["points"] for g, r in record["tests"].items()} == points, record
    answers = reference_answers(source)
    for cell, (old, new, _part, _key) in wrong_answers.items():
        assert old in answers[cell], cell
        answers[cell] = answers[cell].replace(old, new)
    path = Path(folder) / f"{assignment}.ipynb"
    path.write_text(json.dumps(student_notebook(release, answers)))
    record = grade_notebook(source, release, path, limits, assignment=assignment)
    assert record["flags"] == [], record["flags"]
    lost = set(points) if lost is None else set(lost)
    got = {gid: r["points"] for gid, r in record["tests"].items()}
    assert got == {gid: (0.0 if gid in lost else p) for gid, p in points.items()}, json.dumps(record["tests"], indent=1)
    for _old, _new, part, key in wrong_answers.values():
        test = record["tests"][part]
        assert test.get("misconception") == key, (part, test)
        assert sentences[key] in test["message"], (part, test["message"])
    return record
