"""The app's stream monitors: started by the operator (REST, or SOUNDALIKE_MONITORS at start-up),
each a `Monitor` in a thread of its own, its last events kept for readers that follow it
(Server-Sent Events) and its category counts for CSV.

A monitor started through REST lasts until it is stopped or the app ends; only the URLs of the
SOUNDALIKE_MONITORS file (one per line, # comments) are started again when the app restarts: the
file is the operator's configuration, the REST calls are not written anywhere.
"""
from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..scan import DEFAULT_THRESHOLD, Scanner, _check_threshold
from .runner import Monitor
from .sources import is_url

KEEP_EVENTS = 2000  # events kept per monitor for readers that join late or reconnect


class MonitorLimit(Exception):
    """As many monitors run as this server allows."""


@dataclass
class Running:
    id: str
    source: str
    monitor: Monitor
    configured: bool = False  # from SOUNDALIKE_MONITORS
    events: deque = field(default_factory=lambda: deque(maxlen=KEEP_EVENTS))  # (sequence number, event)
    seq: itertools.count = field(default_factory=lambda: itertools.count(1))
    changed: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None
    error: str | None = None

    def take(self, event: dict) -> None:
        with self.changed:
            self.events.append((next(self.seq), event))
            self.changed.notify_all()

    @property
    def done(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    def info(self) -> dict:
        m = self.monitor
        state = "failed" if self.error else m.state
        return {"id": self.id, "source": self.source, "state": state, "started": round(m.started, 3),
                "stream_time": round(m.live.fed, 3), "detections": m.detections, "gaps": m.gaps,
                "categories": dict(m.counts.total.most_common()), "configured": self.configured, "error": self.error}


class Monitors:
    """The running monitors of one app. `scanner()` makes a Scanner over the app's library."""

    def __init__(self, scanner: Callable[[], Scanner], limit: int = 4, status_every: float = 10.0):
        self.scanner = scanner
        self.limit = limit
        self.status_every = status_every
        self._all: dict[str, Running] = {}
        self._lock = threading.Lock()

    def start(self, url: str, threshold: float = DEFAULT_THRESHOLD, *, configured: bool = False) -> dict:
        url = (url or "").strip()
        if not is_url(url):
            raise ValueError("a monitor follows an http(s) stream URL (Icecast, HLS, ...)")
        threshold = _check_threshold(threshold)
        with self._lock:
            running = [r for r in self._all.values() if not r.done]
            if len(running) >= self.limit:
                raise MonitorLimit(f"{len(running)} monitors run already, the most this server allows "
                                   "(SOUNDALIKE_MAX_MONITORS); stop one first")
            run = Running(uuid.uuid4().hex[:12], url, Monitor(self.scanner(), url, threshold=threshold, status_every=self.status_every),
                          configured)
            run.monitor.sinks.append(run.take)
            run.thread = threading.Thread(target=self._run, args=(run,), name=f"monitor-{run.id}", daemon=True)
            self._all[run.id] = run
        run.thread.start()
        return run.info()

    def _run(self, run: Running) -> None:
        try:
            run.monitor.run()
        except Exception as exc:  # a monitor that fails says why; the app keeps serving
            run.error = f"{type(exc).__name__}: {exc}"
            run.take({"type": "error", "error": run.error, "wall_time": round(time.time(), 3)})
        finally:
            with run.changed:
                run.changed.notify_all()

    def get(self, monitor_id: str) -> Running:
        try:
            return self._all[monitor_id]
        except KeyError:
            raise KeyError(f"no monitor with id {monitor_id!r}") from None

    def list(self) -> list[dict]:
        return [r.info() for r in self._all.values()]

    def stop(self, monitor_id: str, wait: float = 10.0) -> dict:
        run = self.get(monitor_id)
        run.monitor.stop.set()
        if run.thread is not None:
            run.thread.join(wait)
        with self._lock:
            self._all.pop(monitor_id, None)
        return run.info()

    def events(self, monitor_id: str, after: int = 0, wait: float = 15.0) -> tuple[list[tuple[int, dict]], bool]:
        """The events numbered above `after` (waiting up to `wait` s for one), and whether the
        monitor has ended (no more will come)."""
        run = self.get(monitor_id)
        with run.changed:
            run.changed.wait_for(lambda: (run.events and run.events[-1][0] > after) or run.done, timeout=wait)
            return [(n, e) for n, e in run.events if n > after], run.done

    def start_configured(self, path: Path | None) -> list[dict]:
        """The URLs of the SOUNDALIKE_MONITORS file, each started (an unreadable file or a bad line
        is reported, not fatal)."""
        if path is None:
            return []
        started = []
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            print(f"warning: SOUNDALIKE_MONITORS: cannot read {path} ({exc.strerror})", flush=True)
            return []
        for line in lines:
            url = line.split("#", 1)[0].strip()
            if url:
                try:
                    started.append(self.start(url, configured=True))
                except (ValueError, MonitorLimit) as exc:
                    print(f"warning: SOUNDALIKE_MONITORS: {url}: {exc}", flush=True)
        return started


__all__ = ["MonitorLimit", "Monitors", "Running"]
