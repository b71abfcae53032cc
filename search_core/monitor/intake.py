"""Audio read ahead of the scan. A thread of its own reads the source as the audio comes and
stamps when each chunk arrived, so that:
- a scan step that runs longer than the audio it covers neither stalls the decoder nor hides the
  time the audio then waited (that wait is part of the monitor's latency, and is measured);
- what arrived during a slow step is scanned as one piece, by one step, instead of one step per
  chunk: a step has fixed costs (the verifier's features of the whole buffer, the event finder's
  context), so a scan that fell behind catches up in fewer, larger steps.
At most `limit` seconds (30) wait; beyond that the reader waits (a file or stdin is then read no
faster than it is scanned, as before; a network stream backs up into ffmpeg and the socket). Once
`stop` is set both ends return: what is queued is not scanned (Ctrl-C ends the monitor at once).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .sources import Gap

_END = object()


@dataclass
class Arrival:
    """Audio that arrived while the scan was busy, joined, with the wall time (time.time()) each of
    its chunks arrived: (seconds into `audio` where the chunk ends, wall time)."""

    audio: np.ndarray
    stamps: list[tuple[float, float]]


class Intake:
    """Iterate it for Gaps and Arrivals of at most `most` seconds each, oldest first."""

    def __init__(self, items: Iterator[np.ndarray | Gap], rate: int, stop: threading.Event, *, most: float = 1.5,
                 limit: float = 30.0):
        self.rate, self.most, self.limit, self.stop = rate, most, limit, stop
        self._items = items
        self._waiting: deque[tuple] = deque()  # (item, wall time it arrived)
        self._seconds = 0.0  # of audio waiting
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, name="intake", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> float:
        """Seconds of audio read but not taken by the scan yet."""
        return self._seconds

    def _seconds_of(self, item) -> float:
        return len(item) / self.rate if isinstance(item, np.ndarray) else 0.0

    def _put(self, item) -> bool:
        with self._cond:
            while self._seconds >= self.limit and not self.stop.is_set():
                self._cond.wait(0.2)
            if self.stop.is_set():
                return False
            self._waiting.append((item, time.time()))
            self._seconds += self._seconds_of(item)
            self._cond.notify_all()
            return True

    def _read(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    break
        except BaseException as exc:  # raised again in the scanning thread, where the caller sees it
            self._error = exc
        finally:
            close = getattr(self._items, "close", None)
            if close:
                close()  # a generator's own cleanup (ffmpeg ended and waited for) runs here
            with self._cond:
                self._waiting.append((_END, 0.0))
                self._cond.notify_all()

    def _take(self, wait: bool) -> tuple | None:
        """The oldest waiting item (waiting for one if `wait`); None when there is none."""
        with self._cond:
            while wait and not self._waiting and not self.stop.is_set():
                self._cond.wait(0.2)
            if self.stop.is_set():
                return (_END, 0.0)
            if not self._waiting:
                return None
            return self._waiting[0]

    def _pop(self) -> None:
        with self._cond:
            item, _ = self._waiting.popleft()
            self._seconds -= self._seconds_of(item)
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Arrival | Gap]:
        while True:
            item, wall = self._take(wait=True)
            if item is _END:
                break
            self._pop()
            if isinstance(item, Gap):
                yield item
                continue
            parts, stamps = [item], [(len(item) / self.rate, wall)]
            seconds = stamps[0][0]
            while (nxt := self._take(wait=False)) is not None:  # what else arrived, up to `most` seconds
                if nxt[0] is _END or isinstance(nxt[0], Gap) or seconds + len(nxt[0]) / self.rate > self.most + 1e-9:
                    break
                self._pop()
                parts.append(nxt[0])
                seconds += len(nxt[0]) / self.rate
                stamps.append((seconds, nxt[1]))
            yield Arrival(np.concatenate(parts) if len(parts) > 1 else parts[0], stamps)
        self._thread.join(timeout=2.0)
        if self._error is not None and not self.stop.is_set():
            raise self._error


__all__ = ["Arrival", "Intake"]
