"""Benchmark: the student's self-check vs `nbgrader validate` on the same notebook, same run.

Fills the released notebook of --assignment with the reference answers (a correct submission;
with --wrong, the first answer replaced by its unanswered stub, so one test fails), then runs
`python -m course_grader.selfcheck NOTEBOOK` and `nbgrader validate NOTEBOOK` --repeat times,
alternating, each a fresh process (start-up included: that is what a student waits for). Prints
the median and best wall times and their ratio (the goal: the self-check answers in at most 1.5 s),
and checks that both report the same number of failing test cells.

    .venv/bin/python bench/selfcheck.py [--assignment conv2d] [--repeat 5] [--wrong]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def notebook(assignment, wrong):
    """The released notebook with the solution's answers (the first one left unanswered if ``wrong``)."""
    source = json.loads((REPO / "solutions" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    release = json.loads((REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8"))
    answers = {}
    for cell in source["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            text = "".join(cell["source"])
            answers[meta["grade_id"]] = "".join(l for l in text.splitlines(True) if "### " not in l)
    first = next(iter(answers))
    for cell in release["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers and not (wrong and gid == first):
            cell["source"] = answers[gid]
    return release


def timed(cmd, cwd, env):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc.stdout + proc.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assignment", default="conv2d", help="the notebook to check (default: conv2d)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command (default: 5)")
    ap.add_argument("--wrong", action="store_true", help="leave the first answer unanswered (one failing test)")
    args = ap.parse_args()
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.assignment}.ipynb"
        path.write_text(json.dumps(notebook(args.assignment, args.wrong)), encoding="utf-8")
        commands = {"self-check": [sys.executable, "-m", "course_grader.selfcheck", str(path)],
                    "nbgrader validate": [str(BIN / "nbgrader"), "validate", str(path)]}
        times = {name: [] for name in commands}
        failed = {}
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                seconds, out = timed(cmd, tmp, env)
                times[name].append(seconds)
                failed[name] = (len(re.findall(r"^FAILED  ", out, re.M)) if name == "self-check"
                                else int((re.search(r"VALIDATION FAILED ON (\d+) CELL", out) or [0, 0])[1]))
    print(f"{args.assignment} ({'one failing test' if args.wrong else 'correct'}), {args.repeat} runs each:")
    for name, ts in times.items():
        print(f"  {name:18s} median {statistics.median(ts):6.2f} s   best {min(ts):6.2f} s   "
              f"failing cells {failed[name]}")
    med = statistics.median(times["self-check"]) / statistics.median(times["nbgrader validate"])
    print(f"  ratio self-check / validate: median {med:.2f}, best "
          f"{min(times['self-check']) / min(times['nbgrader validate']):.2f}")
    if failed["self-check"] != failed["nbgrader validate"]:
        print("  DISAGREE: the two report different numbers of failing cells")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
