"""Visitors' microphone sessions (the app's Live tab): each a LiveScanner fed by the browser's
chunks, with what the tab shows (the level, detections, the sounds' categories, their counts).

Gradio's streaming input keeps only the newest chunk of an event while its handler runs (the
browser sends one every 0.1 s), so a handler that scanned in place would lose the audio that came
meanwhile: measured, 21 s of 32 s reached the app. The handler only queues the chunk (`push`); a
worker thread per session scans, taking what queued during its last step as one piece (up to
JOIN_SECONDS). Its queue holds MAX_BACKLOG seconds; beyond that (a machine slower than real time)
the oldest audio is dropped and counted.

Limits, for a public demo: a session lasts `live_seconds` at most (Gradio's `time_limit` ends the
stream; `feed` refuses beyond it too), `live_sessions` run at once, `live_per_visitor` per visitor
(by address). A session the browser stops feeding (a closed tab, a dropped connection) is ended
after IDLE_SECONDS, so its slot comes back.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..scan import Scanner
from ..sounds_like import CategoryCounts, SoundEvent
from .live import SOURCE_RATE, LiveScanner

IDLE_SECONDS = 10.0
SHOWN_SECONDS = 120.0  # the timeline's span: the last two minutes
LEVEL_STEP = 0.25  # seconds per level point
KEEP_DETECTIONS = 200
MAX_BACKLOG = 30.0  # seconds of audio waiting for the worker
JOIN_SECONDS = 1.5  # the most queued audio the worker scans as one piece
_NONE = object()  # no chunk held over


def _seconds(chunk: tuple[int, np.ndarray]) -> float:
    rate, samples = chunk
    return len(samples) / max(rate, 1)


class LiveLimit(Exception):
    """No microphone session for this visitor now; the message says why."""


@dataclass
class MicSession:
    id: str
    visitor: str
    live: LiveScanner
    clips: Path  # where the stream's moment of each detection is written (a visitor file: swept)
    started: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    counts: CategoryCounts = field(default_factory=CategoryCounts)
    levels: deque = field(default_factory=lambda: deque(maxlen=int(SHOWN_SECONDS / LEVEL_STEP)))  # (time, dBFS)
    sounds: deque = field(default_factory=lambda: deque(maxlen=400))  # SoundEvent, the recent ones
    detections: list = field(default_factory=list)  # dicts, as the monitor's events, plus "moment" (a wav path)
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0  # grows whenever detections or categories changed (the tab redraws them)
    shown: int = -1  # the version the tab shows
    received: float = 0.0  # seconds of audio that reached the server
    first_chunk: float | None = None  # when the first did (monotonic)
    dropped: float = 0.0  # seconds of audio dropped because the worker fell behind
    error: str | None = None  # why the worker stopped, if it failed
    _chunks: queue.Queue = field(default_factory=queue.Queue)
    _backlog: float = 0.0
    _worker: threading.Thread | None = None
    _held: object = _NONE  # a chunk taken from the queue that did not fit the last joined piece
    _resampler: object = None
    _rate: int = 0
    _level_at: float = 0.0
    _peak: float = 0.0

    def push(self, rate: int, samples: np.ndarray) -> None:
        """Queue one chunk from the browser for the worker (returns at once)."""
        seconds = _seconds((rate, samples))
        self.received += seconds
        if self.first_chunk is None:
            self.first_chunk = time.monotonic()
        while self._backlog + seconds > MAX_BACKLOG:
            try:
                old = self._chunks.get_nowait()
            except queue.Empty:
                break
            if old is not None:
                self._backlog -= _seconds(old)
                self.dropped += _seconds(old)
        self._backlog += seconds
        self._chunks.put((rate, samples))
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name=f"live-{self.id[:8]}", daemon=True)
            self._worker.start()

    @property
    def missing(self) -> float:
        """Seconds of the microphone's audio that never reached the server: wall time since the
        first chunk beyond the audio received (Gradio keeps only the newest chunk of a stream
        while the previous one is processed, and a slow connection delays them)."""
        if self.first_chunk is None:
            return 0.0
        return max(0.0, time.monotonic() - self.first_chunk - self.received - 1.0)

    @property
    def backlog(self) -> float:
        """Seconds of audio queued for the worker, not scanned yet."""
        return self._backlog

    def close(self, wait: float = 30.0) -> None:
        """Scan what is queued, then the end of the stream."""
        if self._worker is not None:
            self._chunks.put(None)
            self._worker.join(wait)
        with self.lock:
            if self.error is None:
                self.finish()

    def _work(self) -> None:
        while (item := self._next()) is not None:
            try:
                with self.lock:
                    self.feed(*item)
            except Exception as exc:  # the tab says so; the app keeps serving
                self.error = f"{type(exc).__name__}: {exc}"
                self.version += 1
                return

    def _next(self) -> tuple[int, np.ndarray] | None:
        """The oldest queued chunk joined with those queued behind it at its rate and shape, up to
        JOIN_SECONDS in all (None: the stream ended). A worker that fell behind then catches up in
        fewer, larger scan steps, as a stream monitor's read-ahead does (intake.py): each step has
        fixed costs."""
        first, self._held = (self._chunks.get() if self._held is _NONE else self._held), _NONE
        if first is None:
            return None
        rate, parts, seconds = first[0], [first[1]], _seconds(first)
        self._backlog -= seconds
        while seconds < JOIN_SECONDS:
            try:
                nxt = self._chunks.get_nowait()
            except queue.Empty:
                break
            if (nxt is None or nxt[0] != rate or np.shape(nxt[1])[1:] != np.shape(parts[0])[1:]
                    or seconds + _seconds(nxt) > JOIN_SECONDS + 1e-9):
                self._held = nxt  # the next call starts with it (None: ends the stream)
                break
            parts.append(nxt[1])
            seconds += _seconds(nxt)
            self._backlog -= _seconds(nxt)
        return rate, parts[0] if len(parts) == 1 else np.concatenate(parts)

    def feed(self, rate: int, samples: np.ndarray) -> None:
        """One chunk from the browser: int16 or float, mono or (n, channels), at `rate`."""
        x = np.asarray(samples)
        if x.dtype.kind in "iu":
            x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
        x = x.astype(np.float32, copy=False)
        if x.ndim == 2:
            x = x.mean(axis=1)
        if rate != self._rate:  # first chunk (or the device changed): a new resampler
            import soxr

            self._rate = rate
            self._resampler = None if rate == SOURCE_RATE else soxr.ResampleStream(rate, SOURCE_RATE, 1, dtype="float32")
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        self._levels(x)
        found = self.live.feed(x)
        self._take(found)

    def finish(self) -> None:
        self._take(self.live.finish())

    def _levels(self, x: np.ndarray) -> None:
        step = int(LEVEL_STEP * SOURCE_RATE)
        at = self.live.fed
        for i in range(0, len(x), step):
            part = x[i : i + step]
            self._peak = max(self._peak, float(np.abs(part).max()) if len(part) else 0.0)
            t = at + (i + len(part)) / SOURCE_RATE
            if t - self._level_at >= LEVEL_STEP:
                self.levels.append((t, 20 * np.log10(max(self._peak, 1e-4))))
                self._level_at, self._peak = t, 0.0

    def _take(self, found) -> None:
        heard: list[SoundEvent] = self.live.take_sounds()
        self.counts.add(heard)
        self.sounds.extend(heard)
        for d in found:
            event = {**d.as_dict(), "stream_time": round(self.live.now, 3), "moment": self._moment(d.start, d.end)}
            self.detections.append(event)
        del self.detections[:-KEEP_DETECTIONS]
        if heard or found:
            self.version += 1

    def _moment(self, start: float, end: float) -> str | None:
        """The stream's audio of a detection, written while it is still in the scanner's buffer."""
        buf = self.live.verify_audio
        audio = buf.span(start - 0.2, end + 0.2)
        if not len(audio):
            return None
        import soundfile as sf

        self.clips.mkdir(parents=True, exist_ok=True)
        path = self.clips / f"{self.id}-{len(self.detections) + 1:04d}.wav"
        sf.write(str(path), np.clip(audio, -1, 1), buf.rate, subtype="PCM_16")
        return str(path)


class LiveSessions:
    """The microphone sessions of one app. `scanner()` makes a Scanner over its library."""

    def __init__(self, scanner: Callable[[], Scanner], clips: Callable[[], Path], *, seconds: float = 300.0,
                 sessions: int = 4, per_visitor: int = 1):
        self.scanner, self.clips = scanner, clips
        self.seconds, self.limit, self.per_visitor = seconds, sessions, per_visitor
        self._all: dict[str, MicSession] = {}
        self._lock = threading.Lock()

    def session(self, session_id: str, visitor: str) -> MicSession:
        """This visitor's session (a new one within the limits)."""
        now = time.monotonic()
        with self._lock:
            for sid in [s for s, m in self._all.items() if now - m.seen > IDLE_SECONDS]:
                self._all.pop(sid)._chunks.put(None)  # the browser went away: its worker ends
            got = self._all.get(session_id)
            if got is not None:
                if now - got.started > self.seconds + 5.0:
                    raise LiveLimit(f"A live session lasts {self.seconds:.0f} s at most here; start again.")
                got.seen = now
                return got
            if sum(m.visitor == visitor for m in self._all.values()) >= self.per_visitor:
                raise LiveLimit(f"You have {self.per_visitor} live session(s) running already (the most per visitor here); "
                                "stop it first.")
            if len(self._all) >= self.limit:
                raise LiveLimit(f"{len(self._all)} live sessions run on this server now, the most it allows; try again soon.")
            scanner = self.scanner()
            got = MicSession(session_id, visitor, LiveScanner(scanner), self.clips())
            self._all[session_id] = got
            return got

    def get(self, session_id: str) -> MicSession | None:
        return self._all.get(session_id)

    def end(self, session_id: str) -> MicSession | None:
        with self._lock:
            got = self._all.pop(session_id, None)
        if got is not None:
            got.close()
        return got

    def running(self) -> int:
        return len(self._all)


__all__ = ["LiveLimit", "LiveSessions", "MicSession"]
