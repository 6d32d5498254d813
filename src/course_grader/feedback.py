"""`course-grader feedback`: nbgrader's generate_feedback, with hidden tests removed.

nbgrader's own generate_feedback renders the autograded notebook as it is, so every
hidden-test block (and whatever a failing hidden test printed) ends up in the student's HTML.
Here the GenerateFeedback converter runs with one more preprocessor, :class:`StripHiddenTests`,
that removes the hidden blocks from the source of every test cell and drops the printed
output of tests that have hidden parts; failure messages of hidden tests were already reduced
to "hidden test failed" at grading time.

The page is nbgrader's feedback template with one change (``templates/course_feedback``): MathJax 3
comes from a ``_mathjax/`` folder shipped beside the page (:mod:`course_grader.mathjax`) instead of
MathJax 2.7.7 from a CDN, so the formulas typeset offline. Return the whole folder
``feedback/<student>/<assignment>/`` to the student.
"""
import glob
import os

import nbgrader

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from traitlets import Bool

from . import mathjax
from .course import CourseError
from .notebook import HIDDEN_BEGIN, strip_hidden

#: course_grader's templates (course_feedback extends nbgrader's feedback template)
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
NBGRADER_TEMPLATES = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates")


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
    cfg.HTMLExporter.template_name = "course_feedback"
    cfg.HTMLExporter.extra_template_basedirs = [TEMPLATES, NBGRADER_TEMPLATES]
    mathjax_root = mathjax.find(course.root)
    course.config = cfg
    base = course.dir("autograded")
    graded = sorted(s for s in os.listdir(base) if os.path.isdir(os.path.join(base, s, assignment))) \
        if os.path.isdir(base) else []
    if students:
        graded = [s for s in graded if s in students]
    if not graded:
        raise CourseError(f"nothing graded for {assignment}: run `course-grader grade {assignment}` first")
    from nbgrader.apps.api import capture_log
    from nbgrader.converters import GenerateFeedback
    from nbgrader.utils import temp_attrs
    written, errors = [], []
    for student in graded:
        # the converter itself: NbGraderAPI.generate_feedback forces nbgrader's own template
        with temp_attrs(course.coursedir, assignment_id=assignment, student_id=student):
            app = GenerateFeedback(coursedir=course.coursedir, config=cfg)
            app.force = True  # a re-grade rewrites the page
            res = capture_log(app)
        if not res.get("success"):
            errors.append((student, (res.get("error") or res.get("log") or "")[-500:]))
            continue
        page_dir = course.dir("feedback", student, assignment)
        mathjax.ship(mathjax_root, page_dir)
        written += glob.glob(os.path.join(page_dir, "*.html"))
    return written, errors
