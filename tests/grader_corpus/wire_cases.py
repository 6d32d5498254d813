"""conv2d notebooks against the sandbox's output cap and reports (issue 17, points 4, 3 and 8; issue 12, point 8).

Each case fills the REAL released conv2d notebook with the reference answers, some of them changed
(``answers``: reference answers -> {grade_id: cell source}), and is graded through the job pipeline
with an output limit of OUTPUT_CAP bytes and 256 MB of memory:

* output cases print 5 MB (around correct functions, by several roads past an in-process cap): the
  stored output is truncated with a visible marker, the notebook is flagged "output", and every
  part whose function was defined keeps its points; a cell flooding the output forever is stopped,
  and only the functions it never reached lose;
* wire cases write replies the grader did not ask for: flagged "wire", the sandbox stops;
* a memfd hold over the memory limit is still caught by the sandbox's cgroup (the notebook goes on in a
  fresh sandbox: only conv2d's parts are lost).
"""
from dataclasses import dataclass

OUTPUT_CAP = 1_000_000
FIVE_MB = 5_000_000
P1 = "test_cross_correlate2d_seed_example"
P2 = "test_conv2d_multichannel_bias"
P3 = "test_conv2d_stride_padding"
P4 = "test_conv2d_params"
TRUNCATED = f"[output truncated at {OUTPUT_CAP} bytes"


@dataclass(frozen=True)
class WireCase:
    name: str
    answers: object          # reference answers -> {grade_id: source}
    lost: tuple = ()
    flags: tuple = ()
    markers: tuple = ()      # texts the graded notebook must contain


PRINT_5MB = f"print('x' * {FIVE_MB - 1})\n"
RAW_5MB = f"import os\nfor _ in range({FIVE_MB // 10_000}):\n    os.write(1, b'y' * 10_000)\n"
RESET_STDOUT = ("import io, sys\nsys.stdout = io.TextIOWrapper(io.FileIO(1, 'w', closefd=False), write_through=True)\n"
                f"for _ in range({FIVE_MB // 1000}):\n    print('z' * 999)\n")
FLOOD = "while True:\n    print('spam' * 1000)\n"
MEMFD = """import os
_held = []
for _k in range(12):
    _fd = os.memfd_create(f"held{_k}")
    for _i in range(30):
        os.write(_fd, b"m" * (1 << 20))
    _held.append(_fd)
"""
FORGE = """import os, struct, sys
_dumps = sys._getframe(0).f_globals.get("dumps") or (lambda v: b"{}")
_body = _dumps({"ok": True, "value": 0})
for _fd in range(3, 64):
    try:
        os.write(_fd, (struct.pack(">Q", len(_body)) + _body) * 4)
    except OSError:
        pass
"""
HONEST_REDIRECT = """import contextlib, io
_log = io.StringIO()
with contextlib.redirect_stdout(_log):
    print("quiet")
print("checked", len(_log.getvalue()))
"""



CASES = [
    WireCase("print_5mb_before_and_after_correct_functions",
             lambda s: {"cross_correlate2d": PRINT_5MB + s["cross_correlate2d"],
                        "conv2d": s["conv2d"] + "\n" + PRINT_5MB},
             flags=("output",), markers=(TRUNCATED,)),
    WireCase("write_5mb_to_fd_1_after_a_correct_function",
             lambda s: {"conv2d": s["conv2d"] + "\n" + RAW_5MB}, flags=("output",), markers=(TRUNCATED,)),
    WireCase("reset_sys_stdout_then_print_5mb",
             lambda s: {"cross_correlate2d": RESET_STDOUT + s["cross_correlate2d"]},
             flags=("output",), markers=(TRUNCATED,)),
    WireCase("flood_after_a_correct_function",
             lambda s: {"conv2d": s["conv2d"] + "\n" + FLOOD}, flags=("output",),
             markers=(TRUNCATED, "the cell was stopped")),
    WireCase("flood_before_the_function_it_never_reaches",
             lambda s: {"conv2d": FLOOD + s["conv2d"]}, lost=(P2, P3), flags=("output",),
             markers=("the cell was stopped",)),
    WireCase("replies_written_ahead_in_an_answer", lambda s: {"cross_correlate2d": s["cross_correlate2d"] + FORGE},
             lost=(P1, P2, P3, P4), flags=("wire",), markers=("did not ask for",)),
    WireCase("memfd_hold_over_the_limit", lambda s: {"conv2d": MEMFD + s["conv2d"]}, lost=(P2, P3),
             flags=("memory",), markers=("counting shared memory",)),
    WireCase("honest_redirect_of_stdout", lambda s: {"conv2d": s["conv2d"] + "\n" + HONEST_REDIRECT},
             markers=("checked 6",)),
]
assert len({c.name for c in CASES}) == len(CASES)
