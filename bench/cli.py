"""Benchmark: `course-grader export` vs `nbgrader export` on the same gradebook, same run.

Makes a private course (`course-grader init`), releases two assignments, fills the gradebook with
--students students, each with a submission of both whose grades are set at random through nbgrader's
own Gradebook API, then runs both commands --repeat times, alternating, each a fresh process (start-up
included: that is what an instructor waits for). Prints the median and best wall times, their ratio
(the goal: course-grader at most half of nbgrader's time), and checks that both exports agree on
every score.

    .venv/bin/python bench/cli.py [--students 200] [--repeat 5]
"""
import argparse
import csv
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ASSIGNMENTS = ["conv1d", "conv2d"]


def sh(*cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)


def fill_gradebook(course, n):
    import warnings
    from nbgrader.api import Gradebook
    warnings.filterwarnings("ignore", message="Object of type")  # nbgrader's add_submission autoflush noise
    rng = random.Random(0)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "convolution-derived") as gb:
        for i in range(n):
            sid = f"s{i:04d}"
            gb.add_student(sid, first_name=f"First{i}", last_name=f"Last{i}", email=f"{sid}@example.org")
            for a in ASSIGNMENTS:
                sub = gb.add_submission(a, sid)
                for nb in sub.notebooks:
                    for g in nb.grades:
                        g.auto_score = rng.choice([0.0, g.max_score])
        gb.db.commit()


def timed(cmd, cwd):
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--students", type=int, default=200, help="students in the gradebook")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command (alternating)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        sh(str(BIN / "course-grader"), "init", str(course), cwd=tmp)
        for a in ASSIGNMENTS:
            sh(str(BIN / "course-grader"), "release", a, cwd=course)
        fill_gradebook(course, args.students)
        ours = [str(BIN / "course-grader"), "export", "--out", "cg"]
        theirs = [str(BIN / "nbgrader"), "export", "--to", "nbgrader.csv", "--log-level=ERROR"]
        times = {"course-grader": [], "nbgrader": []}
        for _ in range(args.repeat):
            times["course-grader"].append(timed(ours, course))
            times["nbgrader"].append(timed(theirs, course))
        with open(course / "nbgrader.csv", newline="") as f:
            nb = {(r["student_id"], r["assignment"]): float(r["raw_score"]) for r in csv.DictReader(f)}
        with open(course / "cg" / "assignments.csv", newline="") as f:
            cg = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}
        agree = nb == cg
        print(f"gradebook: {args.students} students x {len(ASSIGNMENTS)} assignments; {args.repeat} runs each, "
              "alternating, fresh processes")
        for name, ts in times.items():
            print(f"  {name + ' export':22s} median {statistics.median(ts):.2f} s   best {min(ts):.2f} s")
        med = statistics.median(times["course-grader"]) / statistics.median(times["nbgrader"])
        best = min(times["course-grader"]) / min(times["nbgrader"])
        print(f"  ratio course-grader / nbgrader: {med:.2f} (median), {best:.2f} (best); goal <= 0.50")
        print(f"  scores agree on all {len(nb)} (student, assignment) pairs: {agree}")
        return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
