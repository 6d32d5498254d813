"""Benchmark: serial `nbgrader autograde` vs `course-grader grade` on the local pool and on Dask, same run.

Grades the same synthetic submissions (default 200 of output_size: a mix of correct, partially wrong
and blank answers) in one temporary course per grader: serial nbgrader, the local pool (--workers 2),
a Dask LocalCluster of 2 workers and of 1 worker. Prints wall times, ratios, and the overhead per
notebook in worker time beyond the student's own compute (measured by running each notebook's answers
and tests in-process, no sandbox), with where it goes: sandbox start, the job outside the sandbox,
the start-up of the command.

    .venv/bin/python bench/grade.py [--n 200] [--assignment output_size]
"""
import argparse
import json
import os
import re
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
    first = next(iter(sol))
    variants.append({g: a for g, a in sol.items() if g != first})  # the first answer left as the stub
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


def grade_with(root, flags, env):
    """Wall seconds of `course-grader grade` with ``flags`` (and the seconds of its start-up alone)."""
    cmd = [str(BIN / "course-grader"), "--course-dir", str(root), "grade", ROOT_ASSIGNMENT[0], "--quiet"]
    t0 = time.perf_counter()
    b = subprocess.run(cmd + flags, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if b.returncode != 0:
        print(b.stdout[-3000:], b.stderr[-3000:])
        raise SystemExit(f"course-grader grade {' '.join(flags)} failed")
    m = re.search(r"writer: ([0-9.]+) s gradebook, ([0-9.]+) s files", b.stdout)
    WRITER.append((float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan")))
    t0 = time.perf_counter()  # again: nothing to grade, so only the start-up and the plan
    subprocess.run(cmd + flags, env=env, capture_output=True, text=True, check=True)
    return wall, time.perf_counter() - t0


def job_timings(root, assignment):
    """Mean seconds per notebook inside the job function (total) and of its sandbox start."""
    total, start, n = 0.0, 0.0, 0
    for p in (root / "grader_results" / assignment).glob("*.json"):
        t = json.loads(p.read_text())[assignment]["timings"]
        total += t.get("total", 0.0)
        start += t.get("sandbox_start", 0.0)
        n += 1
    return total / max(n, 1), start / max(n, 1)


def sandbox_round_trip(k=10):
    """Seconds to start a sandbox and get its first answer (the interpreter and NumPy loaded)."""
    from course_grader.sandbox import Limits, Sandbox
    t0 = time.perf_counter()
    for _ in range(k):
        with Sandbox(Limits()) as sb:
            sb.run_cell("1", timeout=60)
    return (time.perf_counter() - t0) / k


ROOT_ASSIGNMENT = [None]
WRITER = []  # (gradebook s, files s) of each course-grader run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--assignment", default="output_size")
    args = ap.parse_args()
    ROOT_ASSIGNMENT[0] = args.assignment
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    modes = {"local pool, 2 workers": (["--workers", "2"], 2), "Dask LocalCluster, 2 workers": (["--dask-local", "2"], 2),
             "Dask LocalCluster, 1 worker": (["--dask-local", "1"], 1)}
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        roots = {"nbgrader": Path(tmp) / "nbgrader", **{m: Path(tmp) / f"cg{i}" for i, m in enumerate(modes)}}
        for root in roots.values():
            make_course(root, args.assignment)
            subprocess.run([str(BIN / "course-grader"), "--course-dir", str(root), "release", args.assignment],
                           check=True, env=env, capture_output=True)
        source_nb = json.loads((REPO / "solutions" / args.assignment / f"{args.assignment}.ipynb").read_text())
        release_nb = json.loads((roots["nbgrader"] / "exercises" / args.assignment /
                                 f"{args.assignment}.ipynb").read_text())
        nbs = submissions(source_nb, release_nb, args.n)
        for root in roots.values():
            for i, nb in enumerate(nbs):
                d = root / "submitted" / f"student{i:03d}" / args.assignment
                d.mkdir(parents=True)
                (d / f"{args.assignment}.ipynb").write_text(json.dumps(nb))
                (d / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
        compute = own_compute(source_nb, nbs)
        sandbox = sandbox_round_trip()

        t0 = time.perf_counter()
        a = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", args.assignment, "--force",
                            f"--CourseDirectory.root={roots['nbgrader']}"], cwd=roots["nbgrader"], env=env,
                           capture_output=True, text=True)
        t_nbgrader = time.perf_counter() - t0
        if a.returncode != 0:
            print(a.stdout[-3000:], a.stderr[-3000:])
            raise SystemExit("nbgrader autograde failed")
        walls = {m: grade_with(roots[m], flags, env) for m, (flags, _) in modes.items()}
        timings = {m: job_timings(roots[m], args.assignment) for m in modes}

        from nbgrader.api import Gradebook
        scores = {}
        for name, root in roots.items():
            with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
                scores[name] = {s.student.id: s.score for s in gb.find_assignment(args.assignment).submissions}
        same = all(s == scores["nbgrader"] for s in scores.values())

    n = args.n
    print(f"{n} submissions of {args.assignment} on {os.cpu_count()} cores")
    print(f"  student's own compute per notebook:    {compute:7.3f} s")
    print(f"  sandbox start + first reply:           {sandbox:7.3f} s")
    print(f"  nbgrader autograde (serial):           {t_nbgrader:7.1f} s  ({t_nbgrader / n:.3f} s per notebook, "
          f"overhead {t_nbgrader / n - compute:.3f} s)")
    over = {}
    for m, (flags, w) in modes.items():
        wall, startup = walls[m]
        job, start = timings[m]
        over[m] = (wall * w) / n - compute
        print(f"  {m:30s}        {wall:7.1f} s  ({wall / n:.3f} s wall per notebook; overhead {over[m]:.3f} s of "
              f"worker time per notebook: in the job {job - compute:.3f} s (sandbox start {start:.3f} s), "
              f"command start-up {startup:.1f} s = {startup * w / n:.3f} s per notebook)")
    for m, (gb_s, files_s) in zip(modes, WRITER):
        print(f"  writer ({m}): {gb_s / n * 1000:.1f} ms gradebook + {files_s / n * 1000:.1f} ms files per notebook")
    l2, d2, d1 = (walls[m][0] for m in modes)
    print(f"  ratio nbgrader / local pool (2):       {t_nbgrader / l2:7.2f}x")
    print(f"  ratio nbgrader / Dask (2):             {t_nbgrader / d2:7.2f}x")
    print(f"  Dask 2 workers vs 1 (speed-up):        {d1 / d2:7.2f}x  (goal >= 1.8x)")
    print(f"  local pool overhead:                   {over['local pool, 2 workers']:7.3f} s per notebook (goal <= 0.15 s)")
    print(f"  Dask overhead over the local pool:     "
          f"{over['Dask LocalCluster, 2 workers'] - over['local pool, 2 workers']:7.3f} s per notebook (goal <= 0.15 s)")
    print(f"  identical scores in every gradebook:   {same}")


if __name__ == "__main__":
    main()
