"""The `course-grader` command: release, collect, grade, feedback, export, report."""
import argparse
import os
import sys

from .course import Course, CourseError
from .sandbox import Limits


def _release(course, args):
    names = course.assignments() if args.all else [args.assignment]
    if not args.all and not args.assignment:
        raise CourseError("name an ASSIGNMENT or use --all")
    api = course.api()
    for name in names:
        res = api.generate_assignment(name, force=True, create=True)
        if not res.get("success"):
            raise CourseError(f"releasing {name} failed:\n" + (res.get("log") or "")[-3000:] + (res.get("error") or "")[-1000:])
        print(f"released {name} -> {course.dir('release', '.', name)}")
        if args.to_exchange:
            proc = course.nbgrader("release_assignment", name, "--force")
            if proc.returncode != 0:
                raise CourseError(f"nbgrader release_assignment {name} failed:\n" + (proc.stdout + proc.stderr)[-2000:])
            print(f"released {name} to the nbgrader exchange")
    return 0


def _collect(course, args):
    from . import collect
    if args.exchange:
        placed, problems = collect.from_exchange(course, args.assignment)
    elif args.from_folder:
        placed, problems = collect.from_folder(course, args.assignment, args.from_folder)
    else:
        placed, problems = collect.from_zip(course, args.assignment, args.from_zip, args.regexp)
    print(f"collected {args.assignment} for {len(placed)} student(s) into {course.dir('submitted')}")
    for p in problems:
        print(f"error: could not place: {p}", file=sys.stderr)
    return 0


def _grade(course, args):
    from .grade import GradingInterrupted, grade
    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                    memory_mb=args.memory_mb, output_bytes=args.output_bytes)
    try:
        s = grade(course, args.assignment, students=args.student, workers=args.workers, limits=limits,
                  progress=not args.quiet, force=args.force, dask_scheduler=args.dask_scheduler,
                  dask_local=args.dask_local, retries=args.retries)
    except GradingInterrupted as exc:
        print(f"course-grader: {exc}", file=sys.stderr)
        return 128 + exc.signum
    print(f"graded {s['graded']} student(s), failed {s['failed']}, flagged {s['flagged']} "
          f"({s['notebooks']} notebook(s)) in {s['seconds']:.1f} s")
    kept = f"; {s['skipped']} unchanged since they were graded, kept (--force regrades them)" if s["skipped"] else ""
    w = s["write_seconds"]
    writes = f" (writer: {w['gradebook']:.2f} s gradebook, {w['files']:.2f} s files)" if w else ""
    print(f"{s['written']} notebook(s) graded now on the {s['executor']}{writes}{kept}")
    if s["failed_students"]:
        print("failed (unreadable or missing notebooks): " + ", ".join(s["failed_students"]))
    if s["flagged_students"]:
        print("flagged: " + ", ".join(s["flagged_students"]) + f"  (see `course-grader report {args.assignment}`)")
    return 0


def _feedback(course, args):
    from .feedback import generate
    written, errors = generate(course, args.assignment, args.student)
    print(f"wrote {len(written)} feedback file(s) under {course.dir('feedback')}")
    for student, err in errors:
        print(f"error: feedback for {student} failed: {err}", file=sys.stderr)
    return 1 if errors else 0


def _export(course, args):
    from .export import export
    for p in export(course, args.out, per_part=args.per_part):
        print(f"wrote {p}")
    return 0


def _report(course, args):
    from .report import make_report
    path, data = make_report(course, args.assignment, args.out)
    print(f"wrote {path} ({len(data['scores'])} students, {len(data['flags'])} flagged)")
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="course-grader", description="Grade nbgrader assignments at class scale, "
                                "with student code in a bubblewrap sandbox.")
    p.add_argument("--course-dir", default=".", help="the course directory (with nbgrader_config.py); default: .")
    p.add_argument("--db-url", default=None, help="gradebook SQLAlchemy URL (default: nbgrader's, "
                   "sqlite:///<course>/gradebook.db)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("release", help="generate the student version of one or all assignments")
    r.add_argument("assignment", nargs="?")
    r.add_argument("--all", action="store_true", help="every assignment in the source directory")
    r.add_argument("--to-exchange", action="store_true",
                   help="also copy it to nbgrader's exchange (nbgrader release_assignment)")
    r.set_defaults(func=_release)

    c = sub.add_parser("collect", help="collect submissions into submitted/<student>/<assignment>/")
    c.add_argument("assignment")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--exchange", action="store_true", help="from nbgrader's exchange")
    g.add_argument("--from-folder", metavar="DIR", help="from DIR/<student>/<assignment>/*.ipynb")
    g.add_argument("--from-zip", metavar="ZIP", help="from an LMS download zip (nbgrader zip_collect)")
    c.add_argument("--regexp", help="zip only: nbgrader FileNameCollectorPlugin.named_regexp")
    c.set_defaults(func=_collect)

    gr = sub.add_parser("grade", help="autograde one assignment in the sandbox, in parallel")
    gr.add_argument("assignment")
    gr.add_argument("--student", action="append", help="grade only this student (repeatable)")
    where = gr.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="local pool: parallel worker processes on this machine (default: number of cores)")
    where.add_argument("--dask-scheduler", metavar="tcp://HOST:PORT",
                       help="grade on an existing Dask distributed cluster (`dask scheduler` + `dask worker`s)")
    where.add_argument("--dask-local", type=int, metavar="N",
                       help="grade on a Dask LocalCluster of N worker processes started here")
    gr.add_argument("--retries", type=int, default=2,
                    help="times a notebook is retried when its worker process dies (then: a flagged 0); default 2")
    gr.add_argument("--force", action="store_true",
                    help="regrade every notebook (default: only the ones missing or changed since they were graded)")
    d = Limits()
    gr.add_argument("--cell-timeout", type=float, default=d.cell_timeout, help="seconds per cell")
    gr.add_argument("--notebook-timeout", type=float, default=d.notebook_timeout, help="wall-clock seconds per notebook")
    gr.add_argument("--memory-mb", type=int, default=d.memory_mb, help="memory cap of the student's process")
    gr.add_argument("--output-bytes", type=int, default=d.output_bytes, help="cap on everything the student prints")
    gr.add_argument("--quiet", action="store_true", help="no progress bar")
    gr.set_defaults(func=_grade)

    f = sub.add_parser("feedback", help="per-student HTML feedback (hidden tests removed)")
    f.add_argument("assignment")
    f.add_argument("--student", action="append")
    f.set_defaults(func=_feedback)

    e = sub.add_parser("export", help="grades as CSV: per student, per assignment (and per graded part)")
    e.add_argument("--per-part", action="store_true", help="also parts.csv: one row per graded part")
    e.add_argument("--out", help="output folder (default: <course>/export)")
    e.set_defaults(func=_export)

    rp = sub.add_parser("report", help="class report (HTML with PNG plots) for one assignment")
    rp.add_argument("assignment")
    rp.add_argument("--out", help="output folder (default: <course>/reports/<assignment>)")
    rp.set_defaults(func=_report)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    # nbgrader's gradebook runs the `alembic` script of this environment: make it findable
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    course = None
    try:
        course = Course(args.course_dir, args.db_url)
        return args.func(course, args)
    except CourseError as exc:
        print(f"course-grader: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database failed mid-command: one line, password masked
        from sqlalchemy.exc import SQLAlchemyError
        if not isinstance(exc, SQLAlchemyError):
            raise
        from .database import error_from
        print(f"course-grader: error: {error_from(exc, course.db_url if course else args.db_url or '')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
