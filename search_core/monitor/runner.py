"""A monitor: a source's audio through a LiveScanner, each event out as a JSON-ready dict.

Events (`type`):
- `detection`: a library sound, as soon as it is confirmed, with the fields of `scan` (start, end,
  score, id, name, label, speed, pitch_semitones, gain_db, margin, ...), the `stream_time` when it
  was confirmed, the `wall_time` (Unix seconds) and `latency`: seconds from the moment the audio
  of its end arrived (was decoded, whether or not the scan was free to take it) to this event;
- `status`: every `status_every` seconds: stream time, detections so far, gaps, the share of one
  CPU the monitor used, its resident memory;
- `sound`: a sound event and the library category it most likely is (sounds_like.py), library
  sound or not: start, end, label, probability (and the model's own tags where it has them);
- `gap`: the stream was lost and came back after `seconds`.
The categories are also counted per minute (`counts`, a sounds_like.CategoryCounts; `counts_csv`
rewrites a CSV of them at every status line and at the end).
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from ..levels import try_warm
from ..scan import DEFAULT_THRESHOLD, Detection, Scanner
from ..sounds_like import CategoryCounts, SoundEvent
from .live import SOURCE_RATE, LiveScanner
from .intake import Intake
from .sources import Gap, open_source

Sink = Callable[[dict], None]


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class Monitor:
    def __init__(self, scanner: Scanner, source: str, *, realtime: bool = False, threshold: float = DEFAULT_THRESHOLD,
                 status_every: float = 10.0, sinks: list[Sink] | None = None, counts_csv: str | Path | None = None):
        self.scanner = scanner
        self.source = source
        self.realtime = realtime
        self.live = LiveScanner(scanner, threshold=threshold)
        self.status_every = status_every
        self.sinks = list(sinks or [])
        self.stop = threading.Event()
        self.detections = 0
        self.gaps = 0
        self.state = "starting"
        self.counts = CategoryCounts()
        self.counts_csv = Path(counts_csv) if counts_csv else None
        self.started = time.time()
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=4096)  # (stream time, wall time) of fed chunks

    def emit(self, event: dict) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # a failing sink never stops the monitor
                print(f"warning: an event sink failed ({exc})", file=sys.stderr, flush=True)

    def run(self) -> None:
        """Until the source ends (a file, stdin) or `stop` is set; a network source never ends by itself."""
        self.state = "warming"  # the library's templates and their levels first (levels.py): a cold one reports late
        try_warm(self.scanner, stop=self.stop)  # a library not readable now: follow the source anyway
        self.state = "running"
        last_status = time.monotonic()
        for item in Intake(open_source(self.source, realtime=self.realtime, stop=self.stop), SOURCE_RATE, self.stop):
            if isinstance(item, Gap):
                self.gaps += 1
                self.emit({"type": "gap", "seconds": round(item.seconds, 2), "reason": item.reason,
                           "stream_time": round(self.live.fed, 3), "wall_time": round(time.time(), 3)})
                continue
            # each chunk was stamped when it arrived: the wait for a busy scan is part of the latency
            self._arrivals.extend((self.live.fed + at, wall) for at, wall in item.stamps)
            self._report(self.live.feed(item.audio))
            if time.monotonic() - last_status >= self.status_every:
                self._status()
                last_status = time.monotonic()
        if self.live.fed > 0:
            self._report(self.live.finish())
        self.state = "stopped" if self.stop.is_set() else "ended"
        self._status()
        self.close()

    def _status(self) -> None:
        self.emit(self.status())
        if self.counts_csv is not None:
            tmp = self.counts_csv.with_name(self.counts_csv.name + ".tmp")
            tmp.write_text(self.counts.to_csv())
            tmp.replace(self.counts_csv)  # a reader never sees half a file

    def close(self) -> None:
        """Let sinks that send in the background finish (a webhook's last detections)."""
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close:
                close()

    def _report(self, found: list[Detection]) -> None:
        self._heard(self.live.take_sounds())
        lib = self.scanner.library
        for d in found:
            self.detections += 1
            now = time.time()
            self.emit({"type": "detection", "stream_time": round(self.live.now, 3), "wall_time": round(now, 3),
                       "latency": round(now - self._arrival_of(d.end), 3), **d.as_dict(), "model": lib.model})

    def _heard(self, sounds: list[SoundEvent]) -> None:
        self.counts.add(sounds)
        for ev in sounds:
            self.emit({"type": "sound", "stream_time": round(self.live.now, 3), "wall_time": round(time.time(), 3), **ev.as_dict()})

    def _arrival_of(self, stream_time: float) -> float:
        """When the audio of this stream time arrived (wall time), from the fed chunks."""
        for at, wall in self._arrivals:
            if at >= stream_time:
                return wall
        return time.time()

    def status(self) -> dict:
        s = self.live.stats
        return {"type": "status", "state": self.state, "source": self.source, "stream_time": round(self.live.fed, 3),
                "wall_time": round(time.time(), 3), "detections": self.detections, "gaps": self.gaps,
                "cpu_share": round(s.busy_seconds / max(self.live.fed, 1e-9), 4), "rss_mb": round(rss_mb(), 1),
                "windows": s.windows, "candidates": s.candidates, "categories": dict(self.counts.total.most_common())}


def print_sink(out=None) -> Sink:
    """One JSON line per event, flushed at once (another program reads them as they come)."""
    def sink(event: dict) -> None:
        print(json.dumps(event), file=out or sys.stdout, flush=True)

    return sink


class webhook_sink:  # noqa: N801 (a sink factory, like print_sink)
    """POSTs each detection to `url` from a thread of its own (a slow receiver never delays the
    monitor; at most 1000 wait, the oldest are dropped beyond that). `close` waits (10 s at most)
    for those still waiting, so a monitor that ends sends what it found."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url, self.timeout = url, timeout
        self.pending: queue.Queue = queue.Queue(maxsize=1000)
        threading.Thread(target=self._post, name="webhook", daemon=True).start()

    def _post(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout) as client:
            while True:
                event = self.pending.get()
                try:
                    client.post(self.url, json=event)
                except httpx.HTTPError as exc:
                    print(f"warning: webhook {self.url} failed ({exc})", file=sys.stderr, flush=True)
                finally:
                    self.pending.task_done()

    def __call__(self, event: dict) -> None:
        if event["type"] != "detection":
            return
        if self.pending.full():
            self.pending.get_nowait()
            self.pending.task_done()
        self.pending.put_nowait(event)

    def close(self, wait: float = 10.0) -> None:
        deadline = time.monotonic() + wait
        while self.pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)


__all__ = ["Monitor", "print_sink", "webhook_sink"]
