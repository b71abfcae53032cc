"""A scan that follows audio as it arrives: the same two stages as `scan` (scan.py), run every
`step` seconds over the newest audio, so that a library sound is reported about a second after it
ends rather than when the recording does.

What differs from the offline scan, and why:
- windows are embedded once, as soon as they are complete (a regular window when its last sample
  has arrived, a sound event once it has ended or reached a window's length);
- a candidate a window proposes stays pending until its template has been tried at every start
  that overlaps the window; each step tries only the starts whose whole template has arrived since
  (scan.Scanner.verify's `checked`), so no alignment is computed twice;
- an occurrence is reported once it ended `hold` seconds ago (time for the other library sounds
  proposed at that moment to be verified: the cohort margin needs them), and never again; a
  later, better claim on the same moment cannot retract it, and what lost that moment to a
  reported occurrence stays lost after the occurrence leaves the buffer (as merge_detections
  decides it offline). Occurrences already due go out before a step's own work, which then runs at
  the next chunk: a step that verifies many candidates can take longer than the audio it covers,
  and a confirmed occurrence should not wait for it.
Memory is bounded: the buffers keep the last KEEP_WINDOWS windows' worth of audio, and pending
candidates, recent detections and reported onsets are dropped once they are older than that.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from ..events import pieces as event_pieces
from ..matching import logmel
from ..scan import (COHORT_FLOOR, DEFAULT_THRESHOLD, Detection, ScanResult, Scanner, _check_threshold, _overlap, audible, confident,
                    merge_detections)
from ..verifiers import RATE

SOURCE_RATE = 44100  # sources decode to this rate, mono float32
KEEP_WINDOWS = 4.5  # audio kept, in model windows: a window, a template (1.1x) each side, events' context
EVENT_CONTEXT = 3.0  # seconds before the newest audio that events.py looks at (its background floor spans 3 s)
LANDMARK_LAG = 1.0  # landmark candidates are sought for onsets this long ago: a short sound has arrived whole
LANDMARK_CONTEXT = 2.0  # ... in audio from this long before the first such onset (chance is weighed over it too)


class _Stream:
    """Mono audio at one rate, fed in chunks (resampled on the fly), the last `keep` seconds kept."""

    def __init__(self, rate: int, keep: float):
        import soxr

        self.rate, self.keep = rate, keep
        self.resampler = None if rate == SOURCE_RATE else soxr.ResampleStream(SOURCE_RATE, rate, 1, dtype="float32")
        self.audio = np.zeros(0, np.float32)
        self.start = 0.0  # stream time of audio[0]

    def feed(self, chunk: np.ndarray, last: bool = False) -> None:
        if self.resampler is not None:
            chunk = self.resampler.resample_chunk(chunk, last=last)
        self.audio = np.concatenate([self.audio, chunk.astype(np.float32, copy=False)])
        extra = len(self.audio) - int(self.keep * self.rate)
        if extra > 0:
            self.audio = self.audio[extra:]
            self.start += extra / self.rate

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / self.rate

    def span(self, a: float, b: float) -> np.ndarray:
        i = max(0, int(round((a - self.start) * self.rate)))
        return self.audio[i : max(i, int(round((b - self.start) * self.rate)))]


@dataclass
class LiveStats:
    windows: int = 0
    events: int = 0
    candidates: int = 0
    verified: int = 0
    steps: int = 0
    busy_seconds: float = 0.0  # wall time spent in steps (CPU share = busy / stream time)


class LiveScanner:
    """Feed it mono SOURCE_RATE audio; `feed` returns the occurrences it confirms, in order."""

    def __init__(self, scanner: Scanner, *, threshold: float = DEFAULT_THRESHOLD, step: float = 0.5, hold: float = 0.5,
                 min_new: float = 0.75):
        self.scanner = scanner
        self.threshold = _check_threshold(threshold)
        self.step, self.hold = step, hold
        # seconds of new template starts a pending candidate waits for (see Scanner.verify): a sound
        # is verified up to this long after it ended. On the wild tuning seeds 0-1 (in-process, warm
        # levels) 1.0 gave confirmations p95 1.37 s of stream after the end and a CPU share of 0.35;
        # 0.75 gave 1.01 s and 0.39; 0.5 gave 1.02 s and 0.42. The same detections each time.
        self.min_new = min_new
        emb = scanner.library.embedder
        self.win, self.hop = emb.window_seconds, emb.hop_seconds
        keep = KEEP_WINDOWS * self.win + EVENT_CONTEXT
        self.model_audio = _Stream(emb.sample_rate, keep)
        self.verify_audio = _Stream(RATE, keep)
        self.fed = 0.0  # stream seconds received
        self.next_window = 0.0  # start of the next regular window to embed
        self.event_cursor = 0.0  # sound events starting before this were embedded already
        self.onset_cursor = 0.0  # ... and onset windows (events.onset_windows)
        self.landmark_cursor = 0.0  # onsets before this were sought by the landmark stage already
        self._followed = False  # the landmark index follows the library at the first step, not here:
        # a session is made in the browser's stream handler, and while it runs the browser's chunks
        # are lost (a cold index decodes every library file: 3-6 s measured on the bundled set)
        self.pending: dict[tuple[str, float, float], list[tuple[float, float]]] = {}
        self.checked: dict[tuple[str, float, float], float] = {}
        self.meta: dict[str, dict] = {}
        self.recent: list[Detection] = []
        self.reported: deque[Detection] = deque()  # what was reported (kept a minute beyond the buffer)
        self.stats = LiveStats()
        self.heard: list = []  # sounds_like.SoundEvent of the steps since take_sounds
        self._since_step = 0.0
        self._owed = False  # a step is due whose reports went out first

    def feed(self, chunk: np.ndarray) -> list[Detection]:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self.model_audio.feed(chunk)
        self.verify_audio.feed(chunk)
        self.fed += len(chunk) / SOURCE_RATE
        self._since_step += len(chunk) / SOURCE_RATE
        if self._owed:  # the step whose due reports went out at the last call
            self._owed = False
            return self._step(final=False)
        if self._since_step < self.step:
            return []
        self._since_step = 0.0
        due = self._confirmed(self.now, final=False)
        if due:  # out at once; this step's embedding and verification run at the next chunk
            self._owed = True
            return due
        return self._step(final=False)

    def finish(self) -> list[Detection]:
        """The stream ended: flush the resamplers and report what is left."""
        empty = np.zeros(0, np.float32)
        self.model_audio.feed(empty, last=True)
        self.verify_audio.feed(empty, last=True)
        return self._step(final=True)

    @property
    def now(self) -> float:
        return min(self.model_audio.end, self.verify_audio.end)

    def _step(self, final: bool) -> list[Detection]:
        began = time.perf_counter()
        if not self._followed and self.scanner.landmarks is not None:
            self.scanner.landmarks.refresh()
        self._followed = True
        now = self.now
        kept, pieces, regular, onsets = self._new_windows(now, final)
        result = ScanResult("live", float("inf"), [], self.threshold)
        if pieces:
            for key, windows in self.scanner.propose(kept, pieces, regular, result, onsets).items():
                self.pending.setdefault(key, []).extend(windows)
        self._landmarks(now, final, result)
        if self.pending:
            feats = self.scanner.verifier.features(self.verify_audio.audio)
            floor = min(self.threshold, COHORT_FLOOR)
            found = self.scanner.verify(self.pending, feats, self.verify_audio.start, floor, self.meta, result, self.checked,
                                        min_new=0.0 if final else self.min_new)
            siblings = self.scanner.siblings(found, self.pending, self.threshold, self.meta)  # at once: before the hold ends
            self.recent += found + self.scanner.verify(siblings, feats, self.verify_audio.start, floor, self.meta, result)
        self._forget(now)
        out = self._confirmed(now, final)
        s = self.stats
        s.windows += len(regular)
        s.events += result.events
        s.candidates += result.candidates + result.landmarks
        s.verified += result.verified
        s.steps += 1
        s.busy_seconds += time.perf_counter() - began
        self.heard += result.sounds
        return out

    def _landmarks(self, now: float, final: bool, result: ScanResult) -> None:
        """The landmark stage's candidates for the onsets whose sound has arrived since the last step."""
        stage = self.scanner.landmarks
        upto = now if final else now - LANDMARK_LAG
        if stage is None or upto <= self.landmark_cursor:
            return
        a = max(self.verify_audio.start, self.landmark_cursor - LANDMARK_CONTEXT)
        stage.propose(self.verify_audio.span(a, now), None, a, self.landmark_cursor, upto, self.pending, result)
        self.landmark_cursor = upto

    def take_sounds(self) -> list:
        """The sound events categorised since the last call (sounds_like.py), oldest first."""
        out, self.heard = self.heard, []
        return out

    def _new_windows(self, now: float, final: bool):
        """Windows completed since the last step, with their audio at the model's rate."""
        spans = []
        while self.next_window + self.win <= now + 1e-9:
            spans.append((self.next_window, self.next_window + self.win))
            self.next_window += self.hop
        if final and self.next_window < now and now - self.next_window > 0.25 * self.win:
            spans.append((max(0.0, now - self.win), now))  # the tail, as the offline scan's last window
            self.next_window = now
        context = self.verify_audio.span(now - EVENT_CONTEXT - self.win, now)
        offset = now - len(context) / RATE
        found_events, found_onsets = event_pieces(logmel(context), offset, self.win)
        events = self._complete(found_events, self.event_cursor, now, final)
        onsets = self._complete(found_onsets, self.onset_cursor, now, final)
        if events:
            self.event_cursor = max(s for s, _ in events) + 0.05
        if onsets:
            self.onset_cursor = max(s for s, _ in onsets) + 0.05
        kept, pieces = audible(spans + events + onsets, self.model_audio.span)
        return kept, pieces, set(spans), set(onsets)

    def _complete(self, windows: list[tuple[float, float]], cursor: float, now: float, final: bool) -> list[tuple[float, float]]:
        """The windows not embedded yet whose sound has ended (or that reached a window's length)."""
        return [(s, e) for s, e in windows if s >= cursor and (final or e <= now - 0.2 or e - s >= self.win - 1e-6)]

    def _forget(self, now: float) -> None:
        """Pending candidates tried through their windows' ends, and old detections, go."""
        for key in [k for k, ws in self.pending.items() if self.checked.get(k, -1.0) > max(e for _, e in ws) + 0.05]:
            del self.pending[key]
            self.checked.pop(key, None)
        horizon = now - KEEP_WINDOWS * self.win - EVENT_CONTEXT
        for key in [k for k, ws in self.pending.items() if max(e for _, e in ws) < horizon]:
            del self.pending[key]  # its audio is gone from the buffer
            self.checked.pop(key, None)
        self.recent = [d for d in self.recent if d.end >= horizon]
        while self.reported and self.reported[0].end < horizon - 60.0:
            self.reported.popleft()

    def _confirmed(self, now: float, final: bool) -> list[Detection]:
        out = []
        for d in merge_detections([replace(x, change=dict(x.change)) for x in self.recent], self.hop):  # it mutates
            if not final and d.end > now - self.hold:
                continue
            if not confident(d, self.threshold):
                continue
            if any(r.id == d.id and (abs(r.onset - d.onset) <= 0.3 or _overlap(d, r) > 0) for r in self.reported):
                continue  # reported already (overlapping detections of one file are one occurrence, as offline)
            if any(r.id != d.id and r.score >= d.score and _overlap(d, _whole(r)) > 0.5 * max(1e-6, min(d.end - d.start, r.end - r.start))
                   for r in self.reported):
                continue  # that moment went to another library sound (all of it: later segments may not be matched yet)
            self.reported.append(d)
            out.append(d)
        return out


def _whole(d: Detection) -> Detection:
    """The occurrence as long as its whole library sound lasts (at the speed found)."""
    return replace(d, start=d.onset, end=max(d.end, d.onset + d.duration / (d.change.get("speed") or 1.0)))
