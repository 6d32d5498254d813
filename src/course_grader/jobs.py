"""The records that flow through a grading batch: :class:`TestPayload` and :class:`Job` in, :class:`Result` out.

    plan.py -> Job (+ its notebook's TestPayload) -> executors.py -> work.grade_job -> Result -> writer.py

All three are plain dataclasses of plain data (str, bytes, numbers, lists, dicts, frozensets): they pickle,
so the same records travel to a local worker process over a pipe and to a Dask worker over the network.
A worker needs nothing else: no course directory, no gradebook, no shared filesystem.

- :class:`TestPayload`: the trusted part of one notebook, the same for every student: the instructor's
  source notebook (tests with their hidden blocks), the released notebook, and the reference library's
  fingerprints (integrity). Shipped once per worker, not once per job (see executors.py).
- :class:`Job`: one student's notebook: the submitted bytes, the limits, the id of its TestPayload.
- :class:`Result`: what grading it gave: per-part points and messages, flags, misconceptions, timings,
  and the graded notebook for the writer.
"""
import hashlib
import json
from dataclasses import asdict, dataclass, field

from .sandbox import Limits


def digest(*parts):
    """Hex SHA-256 of ``parts`` (bytes, or anything JSON can write with sorted keys)."""
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode()
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class TestPayload:
    """The trusted inputs of one notebook (from solutions/ and the release), shared by all its jobs."""

    __test__ = False  # not a pytest test class

    assignment: str
    notebook: str
    source: dict                 # the instructor's source notebook (tests with hidden blocks, points)
    release: dict                # the released notebook (stubs: what an untouched answer looks like)
    shingles: frozenset          # integrity.library_shingles() of the grading client
    normalized_shingles: frozenset
    payload_id: str              # content hash of all the above (plan.make_payload computes it)


@dataclass(frozen=True)
class Job:
    """One student's notebook to grade."""

    assignment: str
    student: str
    notebook: str
    submission: bytes | None     # the file's bytes; None: nothing was submitted for this notebook
    submitted_as: str | None     # the file name it was submitted under
    payload_id: str              # TestPayload.payload_id of its notebook
    limits: Limits
    content_hash: str            # of submission + trusted payload + limits: a rerun skips an unchanged job
    notes: tuple = ()            # what planning found (a wrong file name, a missing notebook)

    @property
    def key(self):
        """The job's identity within a batch (unique: one job per student and notebook)."""
        return f"{self.assignment}/{self.student}/{self.notebook}"


@dataclass
class Result:
    """What grading one :class:`Job` gave (built by work.grade_job, or work.failed_result)."""

    key: str
    student: str
    notebook: str
    content_hash: str
    status: str                  # "graded", or "failed" (unreadable, missing, or the worker kept dying)
    tests: dict                  # grade_id -> {points, max, passed, message, hidden, failed_in_hidden[, misconception]}
    messages: list               # notes for the student (planning's first, then the grader's)
    flags: list                  # [kind, detail]: timeout, crash, memory, output, tampering, wire, cnnmath, broken, worker
    notebook_json: dict | None   # the graded notebook (cells with outputs) for the gradebook and autograded/
    # seconds: sandbox_start, trusted_decode, grading, total; worker name; started/finished (epoch);
    # regraded_alone, first_attempt
    timings: dict = field(default_factory=dict)
    attempts: int = 1

    @property
    def score(self):
        return sum(t["points"] for t in self.tests.values())

    @property
    def max_score(self):
        return sum(t["max"] for t in self.tests.values())

    @property
    def misconceptions(self):
        """grade_id -> misconception key, for failed parts with a diagnosis."""
        return {gid: t["misconception"] for gid, t in self.tests.items() if t.get("misconception")}

    def record(self):
        """The per-student results-file entry (everything but the graded notebook)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("notebook_json", "key")}
        out.update(score=self.score, max_score=self.max_score, seconds=self.timings.get("total", 0.0))
        return out
