"""The `course-grader` command: init, release, collect, grade, feedback, export, report.

Start-up is kept short: this module imports only the standard library and the sandbox's limits;
each subcommand imports what it needs (nbgrader takes seconds to import) when it runs. The global
options ``--course-dir`` and ``--db-url`` are accepted before or after the subcommand.
"""
import argparse
import os
import sys

from .course import CourseError
from .sandbox import Limits


def _last_line(text):
    """The last non-empty line of nbgrader's log or traceback (its error message)."""
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    return lines[-1] if lines else "no message"


def _init(args):
    from .init import init_course
    root = init_course(args.directory, source=args.source, force=args.force)
    print(f"created the course directory {root}; run the commands inside it (cd {args.directory}) "
          f"or pass --course-dir {args.directory}")
    return 0


def _release(course, args):
    if not args.all and not args.assignment:
        raise CourseError("release: name an ASSIGNMENT or use --all")
    available = course.assignments()
    if not args.all and args.assignment not in available:
        raise CourseError(f"release: no assignment {args.assignment!r} in {course.dir('source')} "
                          f"(assignments: {', '.join(available) or 'none'})")
    names = available if args.all else [args.assignment]
    api = course.api()
    for name in names:
        res = api.generate_assignment(name, force=True, create=True)
        if not res.get("success"):
            raise CourseError(f"releasing {name} failed: {_last_line(res.get('error') or res.get('log'))}")
        if not args.unsafe_skip_solution_check:
            _check_solution(course, name)
        print(f"released {name} -> {course.dir('release', '.', name)}")
        if args.to_exchange:
            proc = course.nbgrader("release_assignment", name, "--force")
            if proc.returncode != 0:
                raise CourseError(f"nbgrader release_assignment {name} failed: {_last_line(proc.stdout + proc.stderr)}")
            print(f"released {name} to the nbgrader exchange")
    return 0


def _check_solution(course, name):
    """Refuse (CourseError, the release folder removed) if the solution of ``name`` does not grade full."""
    import shutil

    from . import solution_check
    pairs = [(name, nb, *course.load_pair(name, nb)) for nb in course.notebooks(name)]
    problem = solution_check.refusal(name, solution_check.check_solutions(pairs))
    if problem:
        shutil.rmtree(course.dir("release", ".", name), ignore_errors=True)
        raise CourseError(f"release: {problem}; nothing was released (fix the source notebook, or pass "
                          "--unsafe-skip-solution-check to release it anyway)")


def _collect(course, args):
    from . import collect
    notes = []
    if args.exchange:
        placed, problems = collect.from_exchange(course, args.assignment)
    elif args.from_folder:
        placed, problems, notes = collect.from_folder(course, args.assignment, args.from_folder)
    else:
        placed, problems = collect.from_zip(course, args.assignment, args.from_zip, args.regexp)
    print(f"collected {args.assignment} for {len(placed)} student(s) into {course.dir('submitted')}")
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
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
    from .export import parse_canvas_ids
    for p in export(course, args.out, per_part=args.per_part, formats=args.format or (),
                    canvas_ids=parse_canvas_ids(args.canvas_id)):
        print(f"wrote {p}")
    return 0


def _report(course, args):
    from .report import make_report
    path, data = make_report(course, args.assignment, args.out)
    print(f"wrote {path} ({len(data['scores'])} students, {len(data['flags'])} flagged)")
    return 0


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (unless it names it already, or the option is a flag
    or unset by default, which its help explains); descriptions keep their line breaks."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def _global_options(parser, suppress):
    """--course-dir and --db-url; on a subcommand (``suppress``) they override the ones before it."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--course-dir", metavar="DIR", default=default if suppress else ".",
                        help="the private course directory, with nbgrader_config.py (made by `course-grader init`)"
                        + (" (default: the one before the subcommand, else the current directory)" if suppress else ""))
    parser.add_argument("--db-url", metavar="URL", default=default,
                        help="gradebook SQLAlchemy URL; unset: the config's CourseDirectory.db_url, else "
                        "sqlite:///<course>/gradebook.db" + (" (default: the one before the subcommand)" if suppress
                                                             else ""))


def build_parser():
    p = argparse.ArgumentParser(prog="course-grader", formatter_class=_Formatter,
                                description="Grade nbgrader assignments at class scale, with student code in a "
                                "bubblewrap sandbox.\nStart with `course-grader init DIR`, then run the other "
                                "commands inside DIR (or with --course-dir DIR).")
    _global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help_text):
        sp = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_Formatter)
        _global_options(sp, suppress=True)
        return sp

    i = command("init", "create a private course directory from the public repository (nbgrader_config.py, "
                "source/ copied from solutions/, mathjax/, .gitignore)")
    i.add_argument("directory", help="the course directory to create (outside the public repository)")
    i.add_argument("--source", metavar="REPO", default=None,
                   help="the public repository to copy from (default: the one course_grader is installed from)")
    i.add_argument("--force", action="store_true", help="add missing files to an existing, non-empty DIRECTORY")
    i.set_defaults(func=_init, needs_course=False)

    r = command("release", "generate the student version of one or all assignments")
    r.add_argument("assignment", nargs="?", help="the assignment (a folder of the source directory)")
    r.add_argument("--all", action="store_true", help="every assignment in the source directory")
    r.add_argument("--to-exchange", action="store_true",
                   help="also copy it to nbgrader's exchange (nbgrader release_assignment)")
    r.add_argument("--unsafe-skip-solution-check", action="store_true",
                   help="release without grading the solution first (unsafe: by default an assignment whose own "
                   "solution does not earn full points under course-grader, in the sandbox, is refused)")
    r.set_defaults(func=_release)

    c = command("collect", "collect submissions into submitted/<student>/<assignment>/")
    c.add_argument("assignment", help="the assignment the submissions are for")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--exchange", action="store_true", help="from nbgrader's exchange")
    g.add_argument("--from-folder", metavar="DIR", help="from DIR/<student>/<assignment>/*.ipynb")
    g.add_argument("--from-zip", metavar="ZIP", help="from an LMS download zip (nbgrader zip_collect)")
    c.add_argument("--regexp", help="zip only: nbgrader FileNameCollectorPlugin.named_regexp, unset: Canvas/"
                   "Moodle names and <student>/<assignment>/<notebook> paths are recognised")
    c.set_defaults(func=_collect)

    gr = command("grade", "autograde one assignment in the sandbox, in parallel")
    gr.add_argument("assignment", help="the assignment to grade")
    gr.add_argument("--student", action="append", help="grade only this student (repeatable); unset: everyone")
    where = gr.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="local pool: parallel worker processes on this machine (unset: the number of cores, "
                       f"{os.cpu_count() or 1} here)")
    where.add_argument("--dask-scheduler", metavar="tcp://HOST:PORT",
                       help="grade on an existing Dask distributed cluster (`dask scheduler` + `dask worker`s)")
    where.add_argument("--dask-local", type=int, metavar="N",
                       help="grade on a Dask LocalCluster of N worker processes started here")
    gr.add_argument("--retries", type=int, default=2,
                    help="times a notebook is retried when its worker process dies (then: a flagged 0)")
    gr.add_argument("--force", action="store_true",
                    help="regrade every notebook (default: only the ones missing or changed since they were graded)")
    d = Limits()
    gr.add_argument("--cell-timeout", type=float, default=d.cell_timeout, help="seconds per cell")
    gr.add_argument("--notebook-timeout", type=float, default=d.notebook_timeout, help="wall-clock seconds per notebook")
    gr.add_argument("--memory-mb", type=int, default=d.memory_mb, help="memory cap of the student's process")
    gr.add_argument("--output-bytes", type=int, default=d.output_bytes, help="cap on everything the student prints")
    gr.add_argument("--quiet", action="store_true", help="no progress bar")
    gr.set_defaults(func=_grade)

    f = command("feedback", "per-student HTML feedback (hidden tests removed, MathJax shipped beside it)")
    f.add_argument("assignment", help="the graded assignment")
    f.add_argument("--student", action="append", help="only this student (repeatable); unset: everyone graded")
    f.set_defaults(func=_feedback)

    e = command("export", "grades as CSV: per student, per assignment (and per graded part, and for Canvas or "
                "Moodle)")
    e.add_argument("--per-part", action="store_true", help="also parts.csv: one row per graded part")
    e.add_argument("--format", action="append", choices=["canvas", "moodle"],
                   help="also the gradebook-import CSV of this LMS: canvas.csv or moodle.csv (repeatable)")
    e.add_argument("--canvas-id", action="append", metavar="ASSIGNMENT=ID",
                   help="the Canvas assignment id of an assignment, for the `Name (ID)` column of canvas.csv "
                   "(repeatable); unset: a bare name, and Canvas creates the assignment")
    e.add_argument("--out", metavar="DIR", help="output folder (default: <course>/export)")
    e.set_defaults(func=_export)

    rp = command("report", "class report (HTML with PNG plots) for one assignment")
    rp.add_argument("assignment", help="the graded assignment")
    rp.add_argument("--out", metavar="DIR", help="output folder (default: <course>/reports/<assignment>)")
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
        if not getattr(args, "needs_course", True):
            return args.func(args)
        from .course import Course
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
