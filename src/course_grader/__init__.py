"""course_grader: the instructor's grading tool of "Convolution, Derived".

Built on nbgrader (release, collect, gradebook, feedback) with its own execution step:
student code runs in a bubblewrap sandbox and the instructor's tests run outside it.
Command line: ``course-grader --help``.
"""
__all__ = ["Limits", "grade_job"]

from .sandbox import Limits
from .work import grade_job
