"""Which cells and parts a dead sandbox costs: the names a failed cell (or call) leaves undefined.

When the student's process dies (a timeout, a crash, the memory limit), :class:`~course_grader.runner.Grader`
starts a fresh sandbox, replays the cells that ran before, and goes on. What it cannot give back is
what the failed cell would have defined: those names are *broken*, and so is every name defined by a
cell that uses a broken name (a helper calling a broken function is broken too). A later cell that
uses a broken name is not run; a test that uses one is "not graded". Everything else is graded as
if nothing had happened.

All functions here are pure: plain strings and dicts in, plain sets and dicts out.
"""
from .notebook import defined_names, used_names

MAX_RESTARTS = 3          # fresh sandboxes per notebook after the first (a notebook of many loops)
MIN_SECONDS_LEFT = 1.0    # no restart with less of the notebook's wall-clock budget left


def uses(code, broken):
    """The broken names ``code`` uses (a set; empty: the cell does not depend on a failure)."""
    return used_names(code) & set(broken)


def spread(broken, cells):
    """Extend ``broken`` (name -> reason) by every name a cell of ``cells`` defines using a broken name.

    ``cells``: the code of the cells that ran before the failure (their definitions are replayed, but
    a function whose body calls a broken name is broken too). Returns ``broken``, updated in place.
    """
    changed = True
    while changed:
        changed = False
        for code in cells:
            needs = uses(code, broken)
            if not needs:
                continue
            reason = broken[sorted(needs)[0]]
            for name in defined_names(code) - set(broken):
                broken[name] = reason
                changed = True
    return broken


def failed_names(code, died_in_call, reason):
    """name -> reason for what a failure leaves undefined.

    ``died_in_call``: the student function a test was calling when the process died (it is broken
    itself: calling it again would cost the same), or None for a cell that died while it ran (what
    the cell defines is missing from the fresh sandbox).
    """
    if died_in_call:
        return {died_in_call: reason}
    return {name: reason for name in defined_names(code)}


def not_run_note(needs, broken):
    """The output of a cell not run because it uses broken names."""
    names = ", ".join(sorted(needs))
    return f"[not run: it uses {names}, which a cell that failed should have defined ({broken[sorted(needs)[0]]})]\n"


def not_graded_message(needs, broken):
    """A test's message when it uses broken names."""
    names = ", ".join(sorted(needs))
    return f"not graded: {broken[sorted(needs)[0]]} (this part uses {names}, which depends on the cell or call that failed)"
