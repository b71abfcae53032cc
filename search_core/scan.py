"""Moments: which library sounds occur inside a long recording, and when (`scan`; where one given
sound occurs in a recording is find.py).

scan, in two stages, streamed block by block (memory does not grow with the recording's length):
1. candidates: the recording is embedded in the model's windows (the same windows the library's
   long files are segmented into), in its sound events and from the onsets inside them
   (events.py), and each piece's nearest library files are looked up in the store, many pieces
   per query; the landmark stage (landmarks.py) adds its own;
2. verification: each candidate's template is slid over the part of the recording around the
   windows that proposed it, by a verifier (verifiers.py: `warped` by default, which also tries
   speed, pitch and stretch changes and says which it found; or the earlier `logmel`); a score at
   or above the threshold is a detection, its peak the onset. The library sounds nearest a
   detected one (SIBLINGS) are then verified there too, so that its competitors are known.
Then one entry per occurrence: detections of the same file that overlap are one, consecutive
segments of a long library file that line up are joined, and where different files claim the same
moment the best-scoring one wins, if it beats the best of the others by MIN_MARGIN.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .audio import AudioError
from .events import pieces as event_pieces
from .matching import logmel, segment_template
from .recording import SILENCE_PEAK, Recording
from .landmarks import LandmarkStage
from .levels import FILE_NAME as LEVELS_FILE, LevelFile
from .verifiers import FRAMES_PER_SECOND, RATE, RoomVerifier, make_verifier

# Chosen on the wild benchmark's tuning seeds 0-11 (an hour; benchmarks/wild.py, README "Finding
# sounds in recordings"), for the default verifier (`warped-room`, as for `warped-bg` before it):
# the lowest threshold, in steps of 0.05, with at most one false detection per hour there.
# (`warped`, raw scores: 0.45; `logmel`: 0.85.)
DEFAULT_THRESHOLD = RoomVerifier.threshold  # 0.3
# Competitors: every candidate is verified down to COHORT_FLOOR, so that a detection knows the best
# score of another library sound at the same moment (its runner-up); a detection must beat it by
# MIN_MARGIN. A template that fits many sounds of its kind fits their moments about as well as the
# library's other sounds of that kind do; the copy of a recording stands out from them.
COHORT_FLOOR = 0.2
MIN_MARGIN = 0.1
# ... unless it scores SURE or more: on the wild benchmark's tuning hour no alignment of a library
# sound that was not there scored over 0.6, so a runner-up this close is another copy of the same
# recording in the library (a game that ships it pitched, a near-duplicate), and the best of them
# is reported.
SURE = 0.7
# Siblings: a library sound detected at the threshold has its SIBLINGS nearest library sounds (by
# embedding) verified at the same moment too, so that another take of it that the candidate stage
# did not propose there is its runner-up or wins the moment: on the wild benchmark's tuning hour a
# telephone-band copy of one take of a spell was named as another take, whose own template (0.83
# there) had never been proposed.
SIBLINGS = 5
CANDIDATES_PER_WINDOW = 10  # nearest library files each regular window proposes for verification
CANDIDATES_PER_EVENT = 20  # ... and each sound event (short sounds are the hard ones to propose)
BLOCK_SECONDS = 60.0
EMBED_BATCH = 32

ScanProgress = Callable[[float, float], None]  # (seconds of the recording done, its duration)


@dataclass
class Detection:
    start: float  # seconds in the recording
    end: float
    score: float  # the verifier's score, in [0, 1] (warped.py says what it means)
    id: str
    name: str
    label: str
    path: str
    clip_start: float = 0.0  # where in the library sound the matched part begins (long sounds)
    duration: float = 0.0  # the library sound's duration
    change: dict = field(default_factory=dict)  # speed, pitch_semitones, gain_db as the verifier estimated them
    runner_up: float = 0.0  # the best score of another library sound at this moment (COHORT_FLOOR or more)

    @property
    def onset(self) -> float:
        """Where the whole library sound begins in the recording (a later segment's match implies an
        earlier start; at another speed its clip_start seconds last clip_start / speed)."""
        return implied_onset(self.start, self.clip_start, self.change.get("speed"))

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("start", "end", "clip_start", "duration"):
            d[k] = round(float(d[k]), 3)
        d["score"] = round(float(d["score"]), 4)
        d.update(d.pop("change"))
        d["margin"] = round(float(self.score - d.pop("runner_up")), 4)
        return d


def confident(d: Detection, threshold: float) -> bool:
    """Reported: at the threshold, and clear of the other library sounds of the moment."""
    return d.score >= threshold and (d.score - d.runner_up >= MIN_MARGIN or d.score >= SURE)


def implied_onset(start: float, clip_start: float = 0.0, speed: float | None = None) -> float:
    return start - clip_start / (speed or 1.0)


@dataclass
class ScanResult:
    recording: str
    duration: float
    detections: list[Detection]
    threshold: float
    seconds: float = 0.0  # wall time of the scan
    windows: int = 0
    candidates: int = 0  # (file, window) pairs the embedding stage proposed
    events: int = 0  # sound events embedded besides the regular windows
    onsets: int = 0  # onset windows embedded besides those (events.onset_windows)
    landmarks: int = 0  # (file, onset) candidates the landmark stage proposed
    verified: int = 0  # distinct (file, region) alignments computed
    unverifiable: list[str] = field(default_factory=list)  # library files that could not be read
    sounds: list = field(default_factory=list)  # sounds_like.SoundEvent: every sound event's likely category

    def as_dict(self, model: str, collection: str) -> dict:
        return {
            "model": model,
            "collection": collection,
            "recording": self.recording,
            "duration": round(self.duration, 3),
            "threshold": self.threshold,
            "detections": [d.as_dict() for d in self.detections],
            "sounds": [ev.as_dict() for ev in self.sounds],
            "categories": self.categories().as_dict(),
        }

    def categories(self):
        from .sounds_like import CategoryCounts

        counts = CategoryCounts()
        counts.add(self.sounds)
        return counts


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    return threshold


def _overlap(a, b) -> float:
    """Seconds two occurrences (Detection or find.Match) overlap."""
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def merge_detections(found: list[Detection], hop: float) -> list[Detection]:
    """One entry per occurrence (see the module's docstring)."""
    by_file: dict[str, list[Detection]] = {}
    for d in found:
        by_file.setdefault(d.id, []).append(d)
    occurrences: list[Detection] = []
    for dets in by_file.values():
        dets.sort(key=lambda d: d.start)
        joined: list[Detection] = []
        for d in dets:
            last = joined[-1] if joined else None
            lined_up = last is not None and abs(d.onset - last.onset) <= 0.3
            if last is not None and (_overlap(d, last) > 0 or (lined_up and d.start - last.end <= hop)):
                if lined_up:  # the same occurrence seen through another window or segment
                    last.end = max(last.end, d.end)
                    last.clip_start = min(last.clip_start, d.clip_start)
                    last.score = max(last.score, d.score)
                elif d.score > last.score:  # the same moment, aligned otherwise: keep the better
                    joined[-1] = d
                continue
            joined.append(d)
        occurrences += joined
    kept: list[Detection] = []
    for d in sorted(occurrences, key=lambda d: -d.score):
        shorter = lambda o: max(1e-6, min(d.end - d.start, o.end - o.start))  # noqa: E731
        rivals = [o for o in kept if _overlap(d, o) > 0.5 * shorter(o)]
        if rivals:  # another library sound explains this moment better
            for o in rivals:
                if o.id != d.id:
                    o.runner_up = max(o.runner_up, d.score)
            continue
        kept.append(d)
    return sorted(kept, key=lambda d: (d.start, -d.score))


class Scanner:
    """Scans recordings against one Library; keeps library templates between scans (bounded)."""

    def __init__(self, library, verifier: str | None = None, *, sounds_like: bool = True):
        from .sounds_like import SoundsLike

        self.library = library
        self.verifier = make_verifier(verifier or library.settings.verifier)
        if hasattr(self.verifier, "levels"):  # background levels kept in the data directory (levels.py)
            self.verifier.levels = LevelFile(Path(library.settings.data_dir) / LEVELS_FILE)
        self.sounds_like = SoundsLike(library) if sounds_like else None  # names every sound event's category
        self.landmarks = LandmarkStage(library) if library.settings.landmarks else None

    def open(self, path: str | Path, name: str | None = None) -> Recording:
        emb = self.library.embedder
        return Recording(path, name=name, max_seconds=self.library.settings.max_scan_seconds, min_seconds=emb.window_seconds)

    def scan(self, path: str | Path, *, threshold: float = DEFAULT_THRESHOLD, name: str | None = None,
             progress: ScanProgress | None = None) -> ScanResult:
        threshold = _check_threshold(threshold)
        began = time.perf_counter()
        rec = self.open(path, name)
        lib = self.library
        if lib.count() == 0:
            raise ValueError("The library is empty: index some sounds first (e.g. python -m search_core index sample_data).")
        emb = lib.embedder
        win, hop = emb.window_seconds, emb.hop_seconds
        spans = emb.spans(rec.duration)
        result = ScanResult(rec.name, rec.duration, [], threshold)
        if self.landmarks is not None:
            self.landmarks.refresh()
        meta: dict[str, dict] = {}
        found: list[Detection] = []
        loudest = 0.0
        reach = 2.2 * win + 0.5  # a window, plus a template (at most one window long, 1.1x when slowed) beyond it
        for block in rec.blocks((emb.sample_rate, RATE), BLOCK_SECONDS, reach):
            loudest = max(loudest, block.peak)
            mine = [(s, e) for s, e in spans if block.start <= s < block.end]
            if block.peak >= SILENCE_PEAK and mine:
                found += self._scan_block(block, mine, threshold, meta, result)
            result.windows += len(mine)
            if progress:
                progress(block.end, rec.duration)
        if loudest < SILENCE_PEAK:
            raise AudioError(rec.name, "is silent (no sound above -80 dBFS); nothing to scan")
        result.detections = [d for d in merge_detections(found, hop) if confident(d, threshold)]
        result.seconds = time.perf_counter() - began
        return result

    def _scan_block(self, block, spans, threshold, meta, result) -> list[Detection]:
        (kept, pieces), onsets = self.windows(block, spans, result)
        if not pieces:
            return []
        proposals = self.propose(kept, pieces, set(spans), result, onsets)
        feats = self.verifier.features(block.audio[RATE])
        if self.landmarks is not None:
            self.landmarks.propose(block.audio[RATE], feats, block.offset, block.start, block.end, proposals, result)
        found = self.verify(proposals, feats, block.offset, min(threshold, COHORT_FLOOR), meta, result)
        siblings = self.siblings(found, proposals, threshold, meta)
        return found + self.verify(siblings, feats, block.offset, min(threshold, COHORT_FLOOR), meta, result)

    def siblings(self, found: list[Detection], proposals: dict, threshold: float, meta: dict) -> dict:
        """Proposals of the SIBLINGS library sounds nearest each file detected at `threshold` or
        more, over that detection's span, where they were not proposed already. `meta` keeps each
        file's neighbours (under "siblings") once looked up."""
        sure = [d for d in found if d.score >= threshold]
        lookup = list(dict.fromkeys(d.id for d in sure if "siblings" not in meta[d.id]))  # verify put each row there
        if lookup:
            rows = self.library.store.get(lookup, with_vectors=True)
            if rows:
                vectors = np.stack([np.asarray(r["embedding"], np.float32) for r in rows])
                for r, near in zip(rows, self.library.store.search_rows(vectors, SIBLINGS + 1)):
                    meta[r["id"]]["siblings"] = [(h.file_id, h.start, h.end) for h in near if h.file_id != r["id"]][:SIBLINGS]
        out: dict[tuple[str, float, float], list[tuple[float, float]]] = {}
        for d in sure:
            for key in meta.get(d.id, {}).get("siblings", ()):
                if any(s < d.end and e > d.start for s, e in proposals.get(key, ())):
                    continue  # verified there already
                out.setdefault(key, []).append((d.start, d.end))
        return out

    def windows(self, block, spans, result) -> tuple[tuple[list[tuple[float, float]], list[np.ndarray]], set]:
        """The block's windows to embed, with their audio, and which of them are onset windows:
        the model's regular windows, plus one per sound event cut to the event and one per onset
        inside an event (events.py), so that a short sound is embedded as the library embeds a
        short file (not drowned in a window of background). Silent windows are left out."""
        emb = self.library.embedder
        audio = block.audio[emb.sample_rate]
        events, onsets = ([(s, e) for s, e in found if block.start <= s < block.end]
                          for found in event_pieces(logmel(block.audio[RATE]), block.offset, emb.window_seconds))
        result.events += len(events)
        result.onsets += len(onsets)

        def cut(s: float, e: float) -> np.ndarray:
            a = max(0, int(round((s - block.offset) * emb.sample_rate)))
            return audio[a : int(round((e - block.offset) * emb.sample_rate))]

        return audible(list(spans) + events + onsets, cut), set(onsets)

    def propose(self, kept, pieces, regular: set, result, onsets: set = frozenset()) -> dict[tuple[str, float, float], list[tuple[float, float]]]:
        """Stage 1: each window's nearest library files (segments), many windows per store query;
        {(file id, segment start, segment end): the windows that proposed it}. `result.sounds`
        gains the sound events' categories (sounds_like.py); `onsets` (events.onset_windows)
        propose as events do but are not sound events."""
        lib = self.library
        proposals: dict[tuple[str, float, float], list[tuple[float, float]]] = {}
        for i in range(0, len(pieces), EMBED_BATCH):
            batch = kept[i : i + EMBED_BATCH]
            vectors, tags = lib.embedder.embed_tagged(pieces[i : i + EMBED_BATCH])
            if self.sounds_like is not None:
                ev = [j for j, w in enumerate(batch) if w not in regular and w not in onsets]
                result.sounds += self.sounds_like.label([batch[j] for j in ev], vectors[ev], None if tags is None else tags[ev])
            found = lib.store.search_rows(vectors, CANDIDATES_PER_EVENT)
            for w, rows in zip(batch, found):
                for r in rows[: CANDIDATES_PER_WINDOW if w in regular else CANDIDATES_PER_EVENT]:
                    proposals.setdefault((r.file_id, r.start, r.end), []).append(w)
                    result.candidates += 1
        return proposals

    def verify(self, proposals, feats, offset: float, threshold: float, meta: dict, result,
               checked: dict | None = None, min_new: float = 0.0) -> list[Detection]:
        """Stage 2: each candidate's template aligned around the windows that proposed it, in
        `feats` (which begin at `offset` seconds). `checked` (live monitoring) maps a candidate to
        the first template start (seconds) not yet tried; it is advanced here, so audio that
        arrives later is tried once, never twice; a candidate waits until `min_new` seconds of new
        starts can be tried, or all of its starts (each try costs about the same, however few).
        `meta` (file id: its row) gains the proposed files that it lacks."""
        missing = list(dict.fromkeys(f for f, _, _ in proposals if f not in meta))
        for row in self.library.store.get(missing) if missing else ():
            meta[row["id"]] = row
        verifier = self.verifier
        out: list[Detection] = []
        for key, proposed_by in proposals.items():
            file_id, seg_start, seg_end = key
            m = meta.get(file_id)
            if m is None:
                continue
            tpl, segmented = segment_template(verifier, m["path"], seg_start, seg_end, m["duration"])
            if tpl is None:
                if m["name"] not in result.unverifiable:
                    result.unverifiable.append(m["name"])
                continue
            limit = verifier.frames(feats) - tpl.frames
            first = int(np.ceil((checked[key] - offset) * FRAMES_PER_SECOND)) if checked is not None and key in checked else 0
            last = int(np.ceil((max(e for _, e in proposed_by) - offset) * FRAMES_PER_SECOND))
            if min_new and limit - first < min_new * FRAMES_PER_SECOND and limit < last:
                continue  # wait for more of the recording
            for lo, hi in _ranges(proposed_by, tpl.length, offset, max(first, 0), limit):
                result.verified += 1
                for hit in verifier.hits(tpl, feats, lo, hi, threshold):
                    onset = offset + hit.position / FRAMES_PER_SECOND - tpl.lead * hit.scale
                    out.append(Detection(
                        start=max(0.0, onset), end=min(result.duration, onset + tpl.duration * hit.scale), score=hit.score,
                        id=file_id, name=m["name"], label=m["label"], path=m["path"],
                        clip_start=seg_start if segmented else 0.0, duration=float(m["duration"]), change=hit.change(),
                    ))
            if checked is not None:
                checked[key] = offset + max(first, limit + 1) / FRAMES_PER_SECOND
        return out


def audible(windows, cut: Callable[[float, float], np.ndarray]) -> tuple[list[tuple[float, float]], list[np.ndarray]]:
    """The windows that are not silent, and their audio (`cut(start, end)`)."""
    pieces, kept = [], []
    for s, e in windows:
        piece = cut(s, e)
        if piece.size and float(np.max(np.abs(piece))) >= SILENCE_PEAK:
            pieces.append(piece)
            kept.append((s, e))
    return kept, pieces


def _ranges(windows, length: float, offset: float, first: int, limit: int) -> list[list[int]]:
    """Template starts (frames from `offset`) that overlap any of the windows, as merged ranges
    within [first, limit]."""
    ranges: list[list[int]] = []
    for s, e in sorted(windows):  # template start anywhere that overlaps the window
        lo = max(first, int(np.floor((s - length - offset) * FRAMES_PER_SECOND)))
        hi = min(limit, int(np.ceil((e - offset) * FRAMES_PER_SECOND)))
        if hi < lo:
            continue
        if ranges and lo <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
    return ranges
