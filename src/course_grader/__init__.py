"""course_grader: the instructor's grading tool of "Convolution, Derived".

Built on nbgrader (release, collect, gradebook, feedback) with its own execution step:
student code runs in a bubblewrap sandbox and the instructor's tests run outside it.
Command line: ``course-grader --help``; the student's self-check: ``python -m course_grader.selfcheck``.
The two public names are imported on first use, so that a submodule (the self-check) starts fast.
"""
__all__ = ["Limits", "grade_job"]


def __getattr__(name):
    if name == "Limits":
        from .sandbox import Limits
        return Limits
    if name == "grade_job":
        from .work import grade_job
        return grade_job
    raise AttributeError(f"module 'course_grader' has no attribute {name!r}")
