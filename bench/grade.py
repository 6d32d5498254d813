"""Benchmark: plain serial `nbgrader autograde` vs `course-grader grade --workers 2`, same run.

Grades the same 50 synthetic submissions of one assignment (default: conv2d; a mix of
correct, partially wrong and blank answers) in two copies of a temporary course, and prints
both wall times, the speed-up, and the per-notebook overhead beyond the student's own
compute (measured by running each notebook's answers and tests in-process, no sandbox).

    .venv/bin/python bench/grade.py [--n 50] [--workers 2] [--assignment conv2d]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.grader_helpers import flipped_conv2d, nbg, reference_answers, student_notebook  # noqa: E402

BIN = Path(sys.executable).parent


def make_course(root, assignment):
    root.mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)


def submissions(source_nb, release_nb, n):
    sol = reference_answers(source_nb)
    variants = [sol]
    if "conv2d" in sol:
        variants.append({**sol, "conv2d": flipped_conv2d(sol["conv2d"])})
    variants.append({})  # blank
    return [student_notebook(release_nb, variants[i % len(variants)]) for i in range(n)]


def own_compute(source_nb, nbs):
    """Seconds to run a notebook's code (answers, instructor cells, full tests) plainly, per notebook."""
    import contextlib
    import io
    tests = {nbg(c)["grade_id"]: "".join(c["source"]) for c in source_nb["cells"]
             if nbg(c).get("grade") and not nbg(c).get("solution")}
    total = 0.0
    for nb in nbs:
        cells = [tests.get(nbg(c).get("grade_id"), "".join(c["source"]) if isinstance(c["source"], list)
                           else c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        ns = {"__name__": "__main__"}
        t0 = time.perf_counter()
        for code in cells:
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    exec(compile(code, "<bench>", "exec"), ns)
                except Exception:
                    pass
        total += time.perf_counter() - t0
    return total / len(nbs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--assignment", default="conv2d")
    args = ap.parse_args()
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        a_root, b_root = Path(tmp) / "nbgrader", Path(tmp) / "course_grader"
        for root in (a_root, b_root):
            make_course(root, args.assignment)
            subprocess.run([str(BIN / "course-grader"), "--course-dir", str(root), "release", args.assignment],
                           check=True, env=env, capture_output=True)
        source_nb = json.loads((REPO / "solutions" / args.assignment / f"{args.assignment}.ipynb").read_text())
        release_nb = json.loads((a_root / "exercises" / args.assignment / f"{args.assignment}.ipynb").read_text())
        nbs = submissions(source_nb, release_nb, args.n)
        for root in (a_root, b_root):
            for i, nb in enumerate(nbs):
                d = root / "submitted" / f"student{i:03d}" / args.assignment
                d.mkdir(parents=True)
                (d / f"{args.assignment}.ipynb").write_text(json.dumps(nb))
                (d / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
        compute = own_compute(source_nb, nbs)

        t0 = time.perf_counter()
        a = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", args.assignment, "--force",
                            f"--CourseDirectory.root={a_root}"], cwd=a_root, env=env, capture_output=True, text=True)
        t_nbgrader = time.perf_counter() - t0
        if a.returncode != 0:
            print(a.stdout[-3000:], a.stderr[-3000:])
            raise SystemExit("nbgrader autograde failed")

        t0 = time.perf_counter()
        b = subprocess.run([str(BIN / "course-grader"), "--course-dir", str(b_root), "grade", args.assignment,
                            "--workers", str(args.workers), "--quiet"], env=env, capture_output=True, text=True)
        t_cg = time.perf_counter() - t0
        if b.returncode != 0:
            print(b.stdout[-3000:], b.stderr[-3000:])
            raise SystemExit("course-grader grade failed")

        # both must agree on the grades
        from nbgrader.api import Gradebook
        scores = []
        for root in (a_root, b_root):
            with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
                scores.append({s.student.id: s.score for s in gb.find_assignment(args.assignment).submissions})
        same = scores[0] == scores[1]

    n, w = args.n, args.workers
    per_nb_cg = t_cg * w / n
    print(f"{n} submissions of {args.assignment} on {os.cpu_count()} cores")
    print(f"  nbgrader autograde (serial):           {t_nbgrader:7.1f} s  ({t_nbgrader / n:.2f} s per notebook)")
    print(f"  course-grader grade --workers {w}:       {t_cg:7.1f} s  ({t_cg / n:.2f} s wall per notebook)")
    print(f"  speed-up:                              {t_nbgrader / t_cg:7.2f}x  (target >= 1.8x)")
    print(f"  student's own compute per notebook:    {compute:7.3f} s")
    print(f"  course-grader overhead per notebook:   {per_nb_cg - compute:7.3f} s of worker time "
          f"({t_cg * w:.1f} worker-s / {n} - compute; target <= 1.0 s)")
    print(f"  nbgrader overhead per notebook:        {t_nbgrader / n - compute:7.3f} s")
    print(f"  identical scores in both gradebooks:   {same}")
    if not same:
        diff = {s: (scores[0].get(s), scores[1].get(s)) for s in scores[0] if scores[0].get(s) != scores[1].get(s)}
        print(f"  differences: {diff}")


if __name__ == "__main__":
    main()
