"""The per-student seed of the hidden tests' cases.

Hidden test blocks draw their cases from ``np.random.default_rng([GRADING_SEED, <constant>])``. The
grader binds :data:`SEED_NAME` in the trusted tests' namespace to :func:`grading_seed` of the student
and the assignment; the notebooks' check helpers default it to 0 when it is absent (``nbgrader
validate`` of a source notebook). So a case named in one student's feedback says nothing about
another student's cases, and a regrade draws the same cases again.
"""
import hashlib

__all__ = ["SEED_NAME", "grading_seed"]

SEED_NAME = "GRADING_SEED"


def grading_seed(student, assignment):
    """The seed of ``student``'s hidden cases in ``assignment``: stable across runs and machines.

    The first 8 bytes of sha256("<student>/<assignment>") as an unsigned big-endian int.
    """
    digest = hashlib.sha256(f"{student}/{assignment}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")
