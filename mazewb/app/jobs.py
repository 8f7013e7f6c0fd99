"""Background jobs for long computations (statistics over many mazes, coefficient grids).

A job runs in a worker thread so that the web server keeps answering everyone else (torch and
procgen release the GIL while they work). The browser that started a job holds its id (a
random token, in its own page state) and polls ``status``; only that id reaches the job, so
sessions never see each other's work. A job function receives a ``JobContext`` and should call
``ctx.progress(done, total, note)`` between chunks of work and stop when ``ctx.cancelled``.
Finished jobs are kept for a while (bounded), then forgotten.
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

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job function (by ``JobContext.check``) when the user cancelled it."""


@dataclass
class JobContext:
    _cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int = 0
    note: str = ""

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise JobCancelled if the job was cancelled."""
        if self._cancel.is_set():
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

    def __init__(self, workers: int = 2, keep: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mazewb-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.keep = keep

    def submit(self, kind: str, fn: Callable[[JobContext], Any]) -> str:
        """Start ``fn(ctx)`` in the background; returns the job's id."""
        job = Job(id=secrets.token_urlsafe(12), kind=kind, ctx=JobContext(note="queued"), started=time.time())
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.state == "running":
                    break
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, fn)
        return job.id

    def _run(self, job: Job, fn: Callable[[JobContext], Any]) -> None:
        try:
            job.result = fn(job.ctx)
            job.state = "cancelled" if job.ctx.cancelled else "done"
        except JobCancelled:
            job.state = "cancelled"
        except ValueError as exc:  # bad input: the message is for the user
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported in the page, logged in full here
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.state, job.error = "failed", f"internal error ({type(exc).__name__}): {exc}"
        finally:
            job.finished = time.time()

    def get(self, job_id: str | None) -> Job | None:
        if not job_id:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str | None) -> bool:
        job = self.get(job_id)
        if job is None or job.state != "running":
            return False
        job.ctx._cancel.set()
        return True

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.ctx._cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
