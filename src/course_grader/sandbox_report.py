"""What the grader makes of the sandbox supervisor's report on one request (plain data in, plain data out).

The supervisor (_child.py) adds these fields to every reply, out of the student's reach: ``stdout`` and
``stderr`` (what was kept under the notebook's output budget), ``output_dropped`` (bytes past it) and
``output_stopped`` (the cell was interrupted for flooding), ``forbidden_imports``, ``compiled`` and
``executed`` (from the worker's report pipe); :class:`course_grader.sandbox.Sandbox` adds ``memory_limit_hits``
from the cgroup. :class:`course_grader.runner.Grader` files them with these functions.
"""
from .sandbox import MEMORY_EXCEEDED, SandboxDied


def stream_outputs(reply, cap):
    """(notebook outputs for one request, an ``output`` flag or None).

    Output past the notebook's limit ``cap`` (bytes) is replaced by one visible marker saying so.
    """
    outputs = []
    for stream in ("stdout", "stderr"):
        text = reply.get(stream)
        if isinstance(text, str) and text:
            outputs.append({"output_type": "stream", "name": stream, "text": text})
    dropped = reply.get("output_dropped")
    if not (type(dropped) is int and dropped > 0):
        return outputs, None
    stopped = reply.get("output_stopped") is True
    note = (f"\n[output truncated at {cap} bytes: the notebook's output passed its limit; {dropped} more bytes "
            "were not kept" + ("; the cell was stopped (KeyboardInterrupt) for flooding the output" if stopped
                               else "") + "]\n")
    outputs.append({"output_type": "stream", "name": "stdout", "text": note})
    return outputs, ["output", f"the output passed the limit of {cap} bytes: it was truncated (grading went on)"]


def memory_stop(reply, memory_mb):
    """The :class:`SandboxDied` a reply calls for (the memory limit was reached), or None.

    A failed request while the cgroup counted memory-limit hits, or a MemoryError (the address-space
    limit of the student's process).
    """
    error = reply.get("error") if reply.get("ok") is False else None
    if error is not None and reply.get("memory_limit_hits"):   # the cgroup's count, not the student's word
        return SandboxDied(MEMORY_EXCEEDED.format(mb=memory_mb), "memory")
    if isinstance(error, dict) and error.get("ename") == "MemoryError":
        return SandboxDied(f"the student's code ran out of memory (limit {memory_mb} MB)", "memory")
    return None
