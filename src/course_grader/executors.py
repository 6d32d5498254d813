"""Where jobs run: a local pool of worker processes, or a Dask distributed cluster.

Both executors run the same job function, :func:`course_grader.work.grade_job`, on the same records,
and hand back one :class:`~course_grader.jobs.Result` per job, in the order they finish:

    with make_executor(options) as ex:
        ex.preflight(limits)                     # every worker proves its sandbox works, or CourseError
        for result in ex.run(jobs, payloads):    # payloads: payload_id -> TestPayload
            writer.write(result)

Faults. A worker process that dies (killed, out of memory) takes only its current job with it: the job
runs again on another worker, at most ``retries`` more times; after that its Result is a flagged 0
(flag "worker") and the batch goes on. Locally, the pool knows which job each worker holds (one job
at a time per worker) and starts a replacement worker; on Dask, the scheduler does the same
(``distributed.scheduler.allowed-failures``, then :class:`distributed.KilledWorker`).

- :class:`LocalPool` (``--workers N``): N forked processes on this machine, each with its own
  :class:`~course_grader.runner.SandboxSource`; a notebook's payload is sent to a worker once.
- :class:`DaskExecutor` (``--dask-scheduler tcp://HOST:PORT`` or ``--dask-local N``): jobs are Dask
  tasks; each notebook's payload is one task of its own that the grading tasks depend on, so the
  scheduler ships it to each worker once and recomputes it if the worker holding it dies.
"""
import multiprocessing
import os
import signal
from collections import deque
from multiprocessing.connection import wait

from .course import CourseError
from .runner import SandboxSource
from .work import failed_result, grade_job, preflight_here

DEFAULT_RETRIES = 2


def worker_died_message(attempts):
    return (f"not graded: the grader's worker process died {attempts} time(s) while grading this notebook "
            "(the submission may exhaust the worker's memory); it was given 0 points")


def preflight_error(where, reason):
    return CourseError(f"the bubblewrap sandbox does not work on {where}: {reason} "
                       "(no notebook is graded without the sandbox)")


# -- the local pool -----------------------------------------------------------------------
def _worker_loop(conn, limits):
    """A local worker: preflight, then (payload | job) messages in, results out, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grading command's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sandboxes = SandboxSource(prespawn=True)
    payloads = {}
    try:
        problem = preflight_here(limits)
        conn.send(("ready", os.getpid(), problem))
        if problem:
            return
        while True:
            kind, value = conn.recv()
            if kind == "payload":
                payloads[value.payload_id] = value
            elif kind == "job":
                conn.send(("result", os.getpid(), grade_job(value, payloads[value.payload_id], sandboxes)))
            else:
                return
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        sandboxes.close()


class _Worker:
    def __init__(self, ctx, limits):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_loop, args=(child, limits), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.job = None          # the job it is grading
        self.payloads = set()    # payload ids it holds

    def give(self, job, payload):
        if job.payload_id not in self.payloads:
            self.conn.send(("payload", payload))
            self.payloads.add(job.payload_id)
        self.conn.send(("job", job))
        self.job = job

    def stop(self, kill=False):
        if self.proc.is_alive() and not kill:
            try:
                self.conn.send(("stop", None))
            except OSError:
                pass
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


class LocalPool:
    """``workers`` forked grading processes on this machine, each grading one job at a time."""

    def __init__(self, workers, retries=DEFAULT_RETRIES):
        if not isinstance(workers, int) or workers < 1:
            raise CourseError(f"--workers must be a positive int, got {workers!r}")
        self.size, self.retries = workers, retries
        self.ctx = multiprocessing.get_context("fork")
        self.workers, self.limits = [], None
        self.description = f"local pool of {workers} worker process(es)"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(kill=exc[0] is not None)

    def close(self, kill=False):
        for w in self.workers:
            w.stop(kill=kill)
        self.workers = []

    def _start(self):
        w = _Worker(self.ctx, self.limits)
        self.workers.append(w)
        return w

    def _await_ready(self, worker):
        if not worker.conn.poll(120):
            raise preflight_error(f"local worker {worker.proc.pid}", "the worker did not start within 120 s")
        try:
            _, pid, problem = worker.conn.recv()
        except EOFError:
            raise preflight_error(f"local worker {worker.proc.pid}", "the worker exited during its check") from None
        if problem:
            raise preflight_error(f"local worker {pid}", problem)
        worker.ready = True

    def preflight(self, limits, jobs=None):
        """Start the workers (no more than ``jobs``); each checks its sandbox (CourseError if one cannot)."""
        self.limits = limits
        started = [self._start() for _ in range(min(self.size, jobs or self.size))]
        for w in started:
            self._await_ready(w)

    def run(self, jobs, payloads):
        """Yield one Result per job as they finish; a dead worker's job is retried elsewhere."""
        if not self.workers:
            raise RuntimeError("call preflight() first")
        queue, attempts = deque(jobs), {}
        idle = [w for w in self.workers]
        while queue or any(w.job for w in self.workers):
            while queue and idle:
                job = queue.popleft()
                idle.pop().give(job, payloads[job.payload_id])
            busy = {w.conn: w for w in self.workers if w.job is not None}
            sentinels = {w.proc.sentinel: w for w in busy.values()}
            for ready in wait(list(busy) + list(sentinels), timeout=1.0):
                w = busy.get(ready) or sentinels.get(ready)
                if w.job is None:
                    continue  # both its pipe and its sentinel fired: handled once
                message = None
                if ready in busy:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        message = None
                if message is not None and message[0] == "result":
                    result, w.job = message[2], None
                    result.attempts = attempts.get(result.key, 1)
                    idle.append(w)
                    yield result
                    continue
                # the worker died holding w.job
                job, w.job = w.job, None
                attempts[job.key] = attempts.get(job.key, 1) + 1
                self.workers.remove(w)
                w.stop(kill=True)
                if attempts[job.key] > self.retries + 1:
                    yield failed_result(job, payloads[job.payload_id], worker_died_message(attempts[job.key] - 1),
                                        "worker", attempts=attempts[job.key] - 1)
                else:
                    queue.append(job)  # to the back: another worker is likely to take it
                replacement = self._start()
                self._await_ready(replacement)
                idle.append(replacement)


# -- Dask distributed --------------------------------------------------------------------
def _payload_task(payload):
    """A Dask task whose value is the payload: kept on the workers that need it, recomputed if lost."""
    return payload


SANDBOXES_ATTRIBUTE = "course_grader_sandboxes"

try:
    from distributed.diagnostics.plugin import WorkerPlugin as _PluginBase
except ImportError:  # without Dask, the local pool still works
    _PluginBase = object


class _SandboxesPlugin(_PluginBase):
    """A Dask worker plugin: each worker owns a SandboxSource (prestarted sandboxes), like a local worker."""

    name = "course-grader-sandboxes"

    def setup(self, worker):
        setattr(worker, SANDBOXES_ATTRIBUTE, SandboxSource(prespawn=True))

    def teardown(self, worker):
        sandboxes = getattr(worker, SANDBOXES_ATTRIBUTE, None)
        if sandboxes is not None:
            sandboxes.close()


def _grade_on_dask_worker(job, payload):
    """grade_job with the Dask worker's own SandboxSource (none if the plugin is not there)."""
    from distributed import get_worker
    return grade_job(job, payload, getattr(get_worker(), SANDBOXES_ATTRIBUTE, None))


class DaskExecutor:
    """Jobs as tasks on a Dask distributed cluster: an existing scheduler, or a LocalCluster of N processes."""

    def __init__(self, scheduler=None, local_workers=None, retries=DEFAULT_RETRIES):
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise CourseError("--dask-scheduler/--dask-local need the Python packages dask and distributed "
                              "(pip install 'dask[distributed]')") from None
        if scheduler is None and (not isinstance(local_workers, int) or local_workers < 1):
            raise CourseError(f"--dask-local must be a positive int, got {local_workers!r}")
        if scheduler is not None and not (isinstance(scheduler, str) and "://" in scheduler):
            raise CourseError(f"--dask-scheduler must be an address like tcp://HOST:8786, got {scheduler!r}")
        self.scheduler, self.local_workers, self.retries = scheduler, local_workers, retries
        self.cluster = self.client = None
        self.runs = 0  # calls of run(): part of every task key, so a regrade is a new task
        self.description = (f"Dask scheduler {scheduler}" if scheduler else
                            f"Dask LocalCluster of {local_workers} worker process(es)")

    def __enter__(self):
        import logging

        import dask
        from distributed import Client, LocalCluster
        # the scheduler's retry limit for tasks whose worker died (LocalCluster: our scheduler; a remote
        # scheduler uses its own setting, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES)
        # worker-saturation 1.0: a worker holds only the task it runs, so a dead worker blames only that one
        self._config = dask.config.set({"distributed.scheduler.allowed-failures": self.retries,
                                        "distributed.scheduler.worker-saturation": 1.0})
        self._config.__enter__()
        try:
            if self.scheduler is None:
                self.cluster = LocalCluster(n_workers=self.local_workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
            else:
                try:
                    self.client = Client(self.scheduler, timeout="20s")
                except (OSError, TimeoutError) as exc:
                    raise CourseError(f"cannot reach the Dask scheduler --dask-scheduler {self.scheduler}: "
                                      f"{' '.join(str(exc).split())}") from None
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    pass
        self.client = self.cluster = None
        self._config.__exit__(None, None, None)

    def preflight(self, limits, jobs=None):
        """Every connected worker runs the sandbox check; CourseError naming the first that fails."""
        try:
            self.client.wait_for_workers(1, timeout=60)
        except (TimeoutError, OSError):
            raise CourseError(f"no Dask worker is connected to {self.scheduler} (start `dask worker "
                              f"{self.scheduler}` on the worker machines)") from None
        replies = self.client.run(preflight_here, limits, on_error="return")
        self.client.register_plugin(_SandboxesPlugin(), name=_SandboxesPlugin.name)
        for address, problem in sorted(replies.items()):
            if isinstance(problem, BaseException):
                problem = f"{type(problem).__name__}: {problem}"
            if problem:
                raise preflight_error(f"Dask worker {address}", problem)

    def run(self, jobs, payloads):
        """Yield one Result per job as it finishes (KilledWorker after the retry limit: a flagged 0)."""
        import warnings

        from distributed import KilledWorker, as_completed
        warnings.filterwarnings("ignore", message=".*Large object of size.*")
        warnings.filterwarnings("ignore", message=".*Sending large graph.*")
        client = self.client
        needed = {job.payload_id for job in jobs}
        payload_futures = {pid: client.submit(_payload_task, payloads[pid], key=f"payload-{pid}", pure=False)
                           for pid in needed}
        futures = {}
        self.runs += 1
        for i, job in enumerate(jobs):
            fut = client.submit(_grade_on_dask_worker, job, payload_futures[job.payload_id],
                                key=f"grade-{self.runs}-{job.content_hash}-{i}",
                                pure=False, priority=-i)
            futures[fut] = job
        try:
            for fut in as_completed(futures):
                job = futures.pop(fut)
                try:
                    result = fut.result()
                except KilledWorker:
                    result = failed_result(job, payloads[job.payload_id], worker_died_message(self.retries + 1),
                                           "worker", attempts=self.retries + 1)
                fut.release()
                yield result
        finally:
            for fut in list(futures) + list(payload_futures.values()):
                fut.cancel()


# -- fairness: a timeout under load is regraded alone -------------------------------------------
REGRADED_ALONE = ("this notebook timed out while other notebooks were being graded on the same machine; it was "
                  "regraded alone, with no other grading running, and this is that grade")


def _host(result):
    return str(result.timings.get("worker", "")).rpartition(":")[0]


def _overlaps(result, others):
    """Whether another result of ``others`` was graded on the same machine while ``result`` was."""
    start, end = result.timings.get("started"), result.timings.get("finished")
    if start is None or end is None:
        return False
    return any(o is not result and _host(o) == _host(result) and o.timings.get("started") is not None
               and o.timings["started"] < end and o.timings.get("finished", 0) > start for o in others)


def run_fairly(executor, jobs, payloads):
    """``executor.run`` for a batch, then every notebook that timed out while another ran regraded alone.

    Yields one Result per job, as ``run`` does. A graded result with a timeout flag is held back until the
    parallel pass is over; if its grading overlapped another notebook's on the same machine (the
    timestamps of work.grade_job), it is graded again, one job at a time with nothing else running, and
    that grade replaces the first (its messages say so; a timeout flag that remains says "also when
    regraded alone"; ``timings["first_attempt"]`` keeps the first one's score and flags).
    """
    held, seen = [], []
    by_key = {job.key: job for job in jobs}
    for result in executor.run(jobs, payloads):
        seen.append(result)
        if result.status == "graded" and any(f[0] == "timeout" for f in result.flags) and len(jobs) > 1:
            held.append(result)
        else:
            yield result
    for first in held:
        if not _overlaps(first, seen):
            yield first
            continue
        for again in executor.run([by_key[first.key]], payloads):
            again.messages.append(REGRADED_ALONE)
            again.flags = [[k, d + " (also when regraded alone)"] if k == "timeout" else [k, d]
                           for k, d in again.flags]
            again.timings.update(regraded_alone=True, first_attempt={"score": first.score, "flags": first.flags,
                                                                     "started": first.timings.get("started"),
                                                                     "finished": first.timings.get("finished")})
            yield again


def make_executor(workers=None, dask_scheduler=None, dask_local=None, retries=DEFAULT_RETRIES):
    """The executor the command-line flags name (default: a local pool with one worker per core)."""
    if not isinstance(retries, int) or retries < 0:
        raise CourseError(f"--retries must be a non-negative int, got {retries!r}")
    if dask_scheduler is not None or dask_local is not None:
        if dask_scheduler is not None and dask_local is not None:
            raise CourseError("use --dask-scheduler or --dask-local, not both")
        return DaskExecutor(dask_scheduler, dask_local, retries)
    return LocalPool(workers if workers is not None else (os.cpu_count() or 1), retries)
