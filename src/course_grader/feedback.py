"""`course-grader feedback`: nbgrader's generate_feedback, with hidden tests removed.

nbgrader's own generate_feedback renders the autograded notebook as it is, so every
hidden-test block (and whatever a failing hidden test printed) ends up in the student's HTML.
Here the GenerateFeedback converter runs with one more preprocessor, :class:`StripHiddenTests`,
that removes the hidden blocks from the source of every test cell and drops the printed
output of tests that have hidden parts; failure messages of hidden tests were already reduced
to "hidden test failed" at grading time.
"""
import glob
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from traitlets import Bool

from .course import CourseError
from .notebook import HIDDEN_BEGIN, strip_hidden


class StripHiddenTests(Preprocessor):
    """Remove hidden-test source and output from a notebook about to be shown to a student."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and HIDDEN_BEGIN in cell.source:
            cell.source = strip_hidden(cell.source).rstrip() + "\n# (hidden tests not shown)"
            kept = []
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("ename") == "TestFailed":
                    kept.append(out)
            cell.outputs = kept
        return cell, resources


def generate(course, assignment, students=None):
    """Write feedback/<student>/<assignment>/<notebook>.html for every graded student."""
    from nbgrader.preprocessors import GetGrades
    cfg = course.config.copy()
    cfg.GenerateFeedback.preprocessors = [GetGrades, StripHiddenTests, CSSHTMLHeaderPreprocessor]
    course.config = cfg
    base = course.dir("autograded")
    graded = sorted(s for s in os.listdir(base) if os.path.isdir(os.path.join(base, s, assignment))) \
        if os.path.isdir(base) else []
    if students:
        graded = [s for s in graded if s in students]
    if not graded:
        raise CourseError(f"nothing graded for {assignment}: run `course-grader grade {assignment}` first")
    from nbgrader.apps import NbGraderAPI
    api = NbGraderAPI(coursedir=course.coursedir, config=cfg)
    written, errors = [], []
    for student in graded:
        res = api.generate_feedback(assignment, student)
        if not res.get("success"):
            errors.append((student, (res.get("error") or res.get("log") or "")[-500:]))
            continue
        written += glob.glob(os.path.join(course.dir("feedback", student, assignment), "*.html"))
    return written, errors
