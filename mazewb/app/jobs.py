"""Background jobs for long computations (statistics over many mazes, coefficient grids).

A job runs in a worker thread so that the web server keeps answering everyone else (torch and
procgen release the GIL while they work). The browser that started a job holds its id (a
random token, in its own page state) and polls ``status``; only that id reaches the job, so
sessions never see each other's work. A job function receives a ``JobContext`` and should call
``ctx.progress(done, total, note)`` between chunks of work and stop when ``ctx.cancelled``.
Finished jobs are kept for a while (bounded), then forgotten.

Every job is bounded: it stops at its first progress report after ``max_seconds`` (a
``JobTimeout``, shown to the user), or once nobody has polled it for ``abandon_seconds`` (the
page was closed), and at most ``max_jobs`` run or wait at once (more are refused). A user error
inside a job (``MazewbError``) is shown as its message; anything else is logged with its
traceback and shown as an internal error.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mazewb.errors import MazewbError, StateError, user_message

log = logging.getLogger(__name__)

INTERNAL = "internal error: the job failed on the server (the details are in its log)"


class JobCancelled(Exception):
    """Raised inside a job function (by ``JobContext.check``) when the user cancelled it."""


class JobTimeout(MazewbError):
    """Raised inside a job function when it ran past its time limit."""


@dataclass
class JobContext:
    _cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    note: str = ""
    deadline: float = float("inf")
    max_seconds: float = float("inf")
    abandon_seconds: float = float("inf")
    last_poll: float = field(default_factory=time.time)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise JobCancelled if the job was cancelled."""
        if self._cancel.is_set():
            raise JobCancelled()
        now = time.time()
        if now > self.deadline:
            raise JobTimeout(
                f"the job ran past its time limit of {self.max_seconds:.0f} s and was stopped; ask for less work"
            )
        if now - self.last_poll > self.abandon_seconds:
            self._cancel.set()
            raise JobCancelled()

    def progress(self, done: int, total: int, note: str = "") -> None:
        self.done, self.total, self.note = int(done), int(total), note
        self.check()


@dataclass
class Job:
    id: str
    kind: str
    ctx: JobContext
    started: float
    state: str = "running"  # running | done | failed | cancelled
    result: Any = None
    error: str = ""
    finished: float | None = None


class JobRunner:
    """Runs job functions on a small thread pool; keeps at most ``keep`` jobs' records."""

    def __init__(
        self,
        workers: int = 2,
        keep: int = 64,
        max_jobs: int = 8,
        max_seconds: float = 1800.0,
        abandon_seconds: float = 120.0,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mazewb-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.keep = keep
        self.max_jobs = max_jobs
        self.max_seconds = max_seconds
        self.abandon_seconds = abandon_seconds
        self._active = 0  # job functions submitted and not yet returned (cancelled ones included)

    def running(self) -> int:
        """Jobs whose functions are still queued or running (a cancelled one until it stops)."""
        with self._lock:
            return self._active

    def submit(self, kind: str, fn: Callable[[JobContext], Any], max_seconds: float | None = None) -> str:
        """Start ``fn(ctx)`` in the background; returns the job's id. StateError when
        ``max_jobs`` jobs are already running or waiting."""
        limit = self.max_seconds if max_seconds is None else min(max_seconds, self.max_seconds)
        now = time.time()
        context = JobContext(
            note="queued", deadline=now + limit, max_seconds=limit, abandon_seconds=self.abandon_seconds
        )
        job = Job(id=secrets.token_urlsafe(12), kind=kind, ctx=context, started=now)
        if self.running() >= self.max_jobs:
            raise StateError(
                f"the server is busy with {self.max_jobs} background jobs; try again when one has finished"
            )
        with self._lock:
            self._active += 1
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.state == "running":
                    break
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, fn)
        return job.id

    def _run(self, job: Job, fn: Callable[[JobContext], Any]) -> None:
        state, error, result = "done", "", None
        try:
            job.ctx.deadline = time.time() + job.ctx.max_seconds  # the limit counts from the start
            job.ctx.check()
            result = fn(job.ctx)
        except JobCancelled:
            state = "cancelled"
        except MazewbError as exc:  # bad input: the message is for the user
            state, error = "failed", user_message(exc)
        except Exception:  # noqa: BLE001 - reported in the page, logged in full here
            log.exception("job %s (%s) failed", job.id, job.kind)
            state, error = "failed", INTERNAL
        finally:
            with self._lock:
                self._active -= 1
                if job.state == "running":  # a cancelled job already says so
                    job.state = "cancelled" if job.ctx.cancelled else state
                    job.error, job.result = error, result if state == "done" else None
                    job.finished = time.time()

    def get(self, job_id: str | None) -> Job | None:
        if not job_id:
            return None
        if not isinstance(job_id, str) or len(job_id) > 64:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            job.ctx.last_poll = time.time()
        return job

    def cancel(self, job_id: str | None) -> bool:
        """Cancel a running job: it is reported cancelled at once, and its function stops at its
        next progress report (its result, if it still finishes, is dropped)."""
        job = self.get(job_id)
        with self._lock:
            if job is None or job.state != "running":
                return False
            job.ctx._cancel.set()
            job.state, job.finished = "cancelled", time.time()
        return True

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.ctx._cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


class JobExecutor:
    """An executor (``mazewb.executor``) that runs the chunks one after the other in the job's
    thread and reports progress between them, so a job built on any batch analysis can be
    cancelled (and times out) between chunks."""

    parallelism = 1

    def __init__(self, ctx: JobContext, note: str) -> None:
        self.ctx, self.note = ctx, note

    def map(self, work: Callable[..., Any], policy: Any, chunks: Any, *, desc: str = "", progress: bool = True,
            **kwargs: Any) -> list[Any]:  # fmt: skip
        out = []
        for i, chunk in enumerate(chunks):
            self.ctx.progress(i, len(chunks), self.note)
            out.append(work(policy, chunk, **kwargs))
        self.ctx.progress(len(chunks), len(chunks), self.note)
        return out
