"""Background jobs of the REST API (indexing, scans): one thread each, one of a kind at a time,
progress readable while they run, results kept for `job_retention` seconds and then forgotten."""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .settings import Settings
from .store import StoreError


class Busy(StoreError):
    """A job of this kind is already running (409 in the REST API)."""


@dataclass
class Job:
    id: str
    kind: str = "index"  # index | scan
    state: str = "queued"  # queued | running | done | failed
    done: float = 0  # files (index) or seconds of the recording (scan)
    total: float = 0
    current: str = ""
    report: dict | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None  # when it ended; the job is forgotten job_retention seconds later

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "kind", "state", "done", "total", "current", "report", "error")}


class Jobs:
    def __init__(self, settings: Settings, in_use: Callable[..., AbstractContextManager], indexing: Callable[[], bool]):
        self.settings = settings
        self.in_use = in_use  # marks a path as in use (spared by the sweeper) for a job's life
        self.indexing = indexing  # whether the library is indexing outside a job (the UI, the CLI)
        self.all: dict[str, Job] = {}
        self._lock = threading.Lock()

    def __contains__(self, job_id: str) -> bool:
        return job_id in self.all

    def get(self, job_id: str) -> Job | None:
        """A job by id; None when unknown or finished longer than job_retention ago."""
        self.prune()
        return self.all.get(job_id)

    def prune(self, now: float | None = None) -> int:
        """Forget jobs that finished more than job_retention seconds ago (memory stays flat)."""
        cutoff = (time.time() if now is None else now) - self.settings.job_retention
        with self._lock:
            old = [k for k, j in self.all.items() if j.finished is not None and j.finished < cutoff]
            for k in old:
                del self.all[k]
        return len(old)

    def start(self, work: Callable[[Callable], object], kind: str = "index", cleanup: Callable[[], None] | None = None,
              uses: Path | None = None) -> Job:
        """Run `work(progress)` in a thread; one job of each kind at a time (scans share 2 cores).
        `uses`: a file or folder the job reads, spared by the sweeper until the job ends."""
        self.prune()
        with self._lock:
            busy = any(j.kind == kind and j.state in ("queued", "running") for j in self.all.values())
            if kind == "index" and (busy or self.indexing()):
                raise Busy("Another indexing job is running on this library; try again when it finishes.")
            if kind == "scan" and busy:
                raise Busy("A scan is already running on this server; try again when it finishes.")
            job = Job(uuid.uuid4().hex, kind)
            self.all[job.id] = job
        held = ExitStack()
        held.enter_context(self.in_use(uses))  # from now until the job ends

        def progress(done: float, total: float, name: str = "") -> None:
            job.done, job.total, job.current = done, total, name

        def run() -> None:
            job.state = "running"
            try:
                out = work(progress)
                job.report = out if isinstance(out, dict) else out.as_dict()
                job.state = "done"
            except Exception as exc:  # reported through the job, never lost
                job.error = str(exc)
                job.state = "failed"
            finally:
                job.finished = time.time()
                held.close()
                if cleanup:
                    cleanup()

        threading.Thread(target=run, name=f"{kind}-{job.id[:8]}", daemon=True).start()
        return job
