"""`course-grader collect`: submissions into nbgrader's submitted/<student>/<assignment>/."""
import glob
import os
import re
import shutil

from nbgrader.plugins import FileNameCollectorPlugin

from .course import CourseError, copy_submission


def from_exchange(course, assignment):
    res = course.api().collect(assignment, update=True)
    if not res.get("success"):
        raise CourseError("nbgrader collect failed:\n" + (res.get("error") or res.get("log") or "")[-2000:])
    return course.submitted_students(assignment), []


def from_folder(course, assignment, folder):
    """Copy <folder>/<student>/<assignment>/ for every student.

    Returns
    -------
    (placed, problems, notes)
        Students collected; what could not be placed (not collected); remarks on collected
        submissions (unexpected notebook names, which the grader matches to the assignment's).
    """
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        raise CourseError(f"--from-folder: {folder} is not a directory")
    placed, problems, notes = [], [], []
    expected = {nb + ".ipynb" for nb in course.notebooks(assignment)}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.startswith("."):
            continue
        if not os.path.isdir(path):
            problems.append(f"{path}: a file at the top level; expected <student>/{assignment}/*.ipynb")
            continue
        sub = os.path.join(path, assignment)
        if not os.path.isdir(sub):
            stray = glob.glob(os.path.join(path, "*.ipynb"))
            hint = f" (found {', '.join(os.path.basename(s) for s in stray)} directly in it)" if stray else ""
            problems.append(f"{path}: no folder {assignment}/ for student {entry!r}{hint}")
            continue
        notebooks = [os.path.basename(p) for p in glob.glob(os.path.join(sub, "*.ipynb"))]
        if not notebooks:
            problems.append(f"{sub}: no .ipynb file; nothing collected for {entry!r}")
            continue
        odd = sorted(set(notebooks) - expected)
        if odd:
            notes.append(f"{sub}: collected for {entry!r}, with unexpected notebook name(s) {', '.join(odd)} "
                         f"(expected {', '.join(sorted(expected))}); the grader will try to match them")
        copy_submission(sub, course.dir("submitted", entry, assignment))
        placed.append(entry)
    return placed, problems, notes


class CourseCollector(FileNameCollectorPlugin):
    """Student ids from LMS-style names or from <student>/[<assignment>/]<notebook>.ipynb paths."""

    patterns = [
        r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>[^/]+)$",
        r"(?:.*/)?(?P<student_id>[^/]+)/(?P<assignment>[^/]+)/(?P<file_id>[^/]+)$",
        r"(?P<student_id>[^/]+)/(?P<file_id>[^/]+)$",
    ]

    def _match(self, filename):
        if self.named_regexp:
            return super()._match(filename)
        marker = os.sep + "extracted" + os.sep
        rel = filename.split(marker, 1)[1] if marker in filename else os.path.basename(filename)
        rel = rel.replace(os.sep, "/")
        # zip_collect extracts each archive into a folder named after it: drop that level
        if marker in filename:
            archive = os.path.join(filename.split(marker, 1)[0], "archive")
            stems = {os.path.splitext(z)[0] for z in os.listdir(archive)} if os.path.isdir(archive) else set()
            first, _, rest = rel.partition("/")
            if rest and first in stems:
                rel = rest
        for pat in self.patterns:
            m = re.match(pat, rel)
            if m:
                gd = {k: v for k, v in m.groupdict().items() if k in ("student_id", "file_id", "timestamp")}
                if gd.get("timestamp"):
                    t = gd["timestamp"]
                    if re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}", t):
                        d, h = t[:10], t[11:].replace("-", ":")
                        gd["timestamp"] = f"{d} {h}"
                else:
                    gd.pop("timestamp", None)
                return gd
        return None


def from_zip(course, assignment, zip_path, regexp=None):
    """nbgrader zip_collect on an LMS download; returns (students, problems)."""
    zip_path = os.path.abspath(zip_path)
    if not os.path.isfile(zip_path):
        raise CourseError(f"--from-zip: {zip_path} does not exist")
    archive = os.path.join(course.root, "downloaded", assignment, "archive")
    if os.path.isdir(archive):
        shutil.rmtree(archive)
    os.makedirs(archive)
    shutil.copy(zip_path, archive)
    args = ["zip_collect", assignment, "--force",
            "--ZipCollectApp.collector_plugin=course_grader.collect.CourseCollector"]
    if regexp:
        args.append(f"--FileNameCollectorPlugin.named_regexp={regexp}")
    before = set(course.submitted_students(assignment))
    proc = course.nbgrader(*args)
    log = proc.stdout + proc.stderr
    problems = []
    for line in log.splitlines():
        if "Skipped" in line or "Invalid submission notebook name" in line or "did not match" in line:
            problems.append(line.split("]", 1)[-1].strip())
    if proc.returncode != 0:
        raise CourseError("nbgrader zip_collect failed:\n" + log[-2000:])
    after = course.submitted_students(assignment)
    return after, problems
