"""The `course-grader` command line, through the real command: one-line errors (stderr checked whole, exit
code 2), global options after the subcommand, and a --help for every subcommand that explains every option
and shows its default."""
import json
import re
import subprocess

import pytest

from course_grader.cli import build_parser
from tests.grader_helpers import CLI, needs_bwrap, new_course, run

ASSIGNMENT = "conv1d"


def cli(*args, cwd=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = new_course(tmp_path_factory, "cli", [ASSIGNMENT])
    run(root, "release", ASSIGNMENT)
    return root


def test_missing_course_directory(tmp_path):
    missing = tmp_path / "nosuch"
    proc = cli("--course-dir", str(missing), "release", ASSIGNMENT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"course-grader: error: --course-dir: the course directory {missing} does not exist "
                           f"(create one with `course-grader init {missing}`)\n")


def test_directory_without_nbgrader_config(tmp_path):
    (tmp_path / "solutions" / ASSIGNMENT).mkdir(parents=True)
    proc = cli("grade", ASSIGNMENT, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"course-grader: error: --course-dir: {tmp_path} is not a course directory: it has no "
                           "nbgrader_config.py (create one with `course-grader init DIR`, or pass --course-dir)\n")


def test_release_unknown_assignment_is_one_line(course):
    proc = cli("release", "nosuch", "--course-dir", str(course))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"course-grader: error: release: no assignment 'nosuch' in {course / 'solutions'} "
                           f"(assignments: {ASSIGNMENT})\n")


def test_global_options_after_the_subcommand(course, tmp_path):
    before = cli("--course-dir", str(course), "export", "--out", str(tmp_path / "a"))
    after = cli("export", "--course-dir", str(course), "--out", str(tmp_path / "b"))
    assert before.returncode == 0 and after.returncode == 0, (before.stderr, after.stderr)
    assert (tmp_path / "a" / "students.csv").read_text() == (tmp_path / "b" / "students.csv").read_text()
    # the one after the subcommand wins
    proc = cli("--course-dir", str(tmp_path / "nosuch"), "export", "--course-dir", str(course),
               "--out", str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "other.db"
    proc = cli("export", "--course-dir", str(course), "--db-url", f"sqlite:///{db}", "--out", str(tmp_path / "d"))
    # the gradebook named after the subcommand is the one used: a new, empty one (no conv1d column)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "students.csv").read_text().splitlines() == [f"student_id,{ASSIGNMENT},total,max_total"]
    assert (tmp_path / "d" / "students.csv").read_text().splitlines() == ["student_id,total,max_total"]


@needs_bwrap
def test_collect_warns_for_a_placed_notebook_with_another_name(course, tmp_path):
    release = (course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    (tmp_path / "zoe" / ASSIGNMENT).mkdir(parents=True)
    odd = tmp_path / "zoe" / ASSIGNMENT
    (odd / "conv1d (1).ipynb").write_text(release)
    proc = cli("collect", ASSIGNMENT, "--from-folder", str(tmp_path), "--course-dir", str(course))
    assert proc.returncode == 0
    assert proc.stdout == f"collected {ASSIGNMENT} for 1 student(s) into {course / 'submitted'}\n"
    assert proc.stderr == (f"warning: {odd}: collected for 'zoe', with unexpected notebook name(s) conv1d (1).ipynb "
                           f"(expected {ASSIGNMENT}.ipynb); the grader will try to match them\n")
    assert (course / "submitted" / "zoe" / ASSIGNMENT / "conv1d (1).ipynb").exists()


@needs_bwrap
def test_truncated_notebook_message(course, tmp_path):
    """The JSON error is quoted once ("... starting at: line 1, column N"), not "starting at at line"."""
    text = json.dumps(json.loads((course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()))
    cut = text[:text.index('"source"') + 20]  # inside a string: "Unterminated string starting at"
    try:
        json.loads(cut)
    except json.JSONDecodeError as exc:
        truth = exc
    (tmp_path / "cut" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "cut" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(cut)
    run(course, "collect", ASSIGNMENT, "--from-folder", str(tmp_path))
    run(course, "grade", ASSIGNMENT, "--student", "cut", "--quiet")
    record = json.loads((course / "grader_results" / ASSIGNMENT / "cut.json").read_text())[ASSIGNMENT]
    assert record["messages"][0].startswith(
        f"the notebook file is not valid JSON ({truth.msg}: line {truth.lineno}, column {truth.colno}); "
        "was it saved completely?"), record["messages"]
    assert "at at" not in record["messages"][0]


def subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    return parser, sub.choices


@pytest.mark.parametrize("name", sorted(subcommands()[1]))
def test_every_option_is_explained_with_its_default(name):
    parser, choices = subcommands()
    proc = cli(name, "--help")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = " ".join(proc.stdout.split())
    for action in choices[name]._actions:
        if isinstance(action, type(parser._actions[0])):  # -h, --help
            continue
        assert action.help and len(action.help) > 10, f"{name} {action.dest}: no help text"
        label = action.option_strings[0] if action.option_strings else action.dest
        assert re.search(rf"(^|\s){re.escape(label)}(\s|$)", text), f"{name} --help does not list {label}"
        if action.default not in (None, False, "==SUPPRESS=="):
            assert f"default: {action.default}" in text or "(default:" in action.help, \
                f"{name} --help does not show the default of {label} ({action.default!r})"
        if action.default == "==SUPPRESS==":  # the global options repeated after the subcommand
            assert "default: the one before the subcommand" in " ".join(action.help.split())


def test_top_level_help_lists_every_subcommand():
    _, choices = subcommands()
    proc = cli("--help")
    assert proc.returncode == 0
    for name in choices:
        assert re.search(rf"^\s+{name}\s+\S", proc.stdout, re.M), f"--help does not explain {name}"
    assert "(default: .)" in proc.stdout
