"""Near-duplicate finder: groups of library files that are the same sound in different versions.

Byte-identical files are already one entry (the indexer dedupes by sha256); this finds the rest:
re-encoded, resampled, gain-changed, trimmed, padded with silence, lightly noised.

Two stages, like `scan`, so a library is never compared pair by pair with the precise stage:
1. candidates: each file's nearest neighbours by embedding cosine (top `CANDIDATES`, exact);
2. verification: normalised cross-correlation of the two waveforms at 11.025 kHz, over the part
   where they overlap at the best lag. A copy scores 0.9-1.0 whatever its gain, padding or
   codec; two takes of the same kind of sound (two footsteps, two explosions) score 0.3-0.7,
   because their waveforms do not line up sample by sample even when their spectra look alike.
   (The log-mel correlation `scan` uses cannot separate those takes: measured in the benchmark.)

Groups are complete-linkage: a file joins a group only when it matches *every* member, so chains
of "A is like B is like C" never grow into one mega-group. A group's score is its weakest pair.
"""
from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .audio import AudioError, load_audio

RATE = 11025
DEFAULT_THRESHOLD = 0.8  # chosen on benchmark seed 7: copies 0.74-1.0 (one 0.74-0.75), other pairs <= 0.70
CANDIDATES = 30  # neighbours per file proposed to the precise stage (top-10 misses 1 copy in 5)
MIN_COSINE = 0.5  # a pair under this embedding cosine is never a copy (measured: copies >= 0.7)
MAX_SECONDS = 60.0  # of a file's audible part compared (longer files: their first minute)
SILENCE_DB = 50.0  # samples this far under the file's peak, at either end, are trimmed as silence
MIN_PEAK = 1e-3  # a file quieter than this (-60 dBFS) is silence: never anybody's duplicate
ENERGY_COVER = 0.9  # the overlap must hold this share of one file's energy ...
TIME_COVER = 0.5  # ... and this share of each file's audible duration
LOSSLESS = {".wav", ".flac", ".aif", ".aiff", ".w64", ".au", ".caf"}

Progress = Callable[[int, int, str], None]  # (done, total, stage)


def make_wave(samples: np.ndarray) -> np.ndarray | None:
    """The audible part of mono audio at RATE; None when it is silent."""
    y = np.asarray(samples, dtype=np.float64)
    if y.size == 0 or not np.all(np.isfinite(y)):
        return None
    y = y - y.mean()
    peak = float(np.max(np.abs(y)))
    if peak < MIN_PEAK:
        return None
    loud = np.flatnonzero(np.abs(y) >= peak * 10 ** (-SILENCE_DB / 20))
    return y[loud[0] : min(loud[-1] + 1, loud[0] + int(MAX_SECONDS * RATE))].astype(np.float32)


def load_wave(path: str | Path) -> np.ndarray | None:
    try:
        return make_wave(load_audio(Path(path), RATE).samples)
    except (AudioError, OSError):
        return None


def pair_score(x: np.ndarray, y: np.ndarray) -> float:
    """Best normalised cross-correlation of two waves over their overlap, among the lags where
    the overlap holds nearly all of one file's energy and at least half of each one's duration
    (so a copy trimmed at either end still matches, and a short click inside a long file does
    not). 1.0 = the same waveform up to gain; two different takes stay well under."""
    from scipy import fft

    la, lb = len(x), len(y)
    if min(la, lb) < TIME_COVER * max(la, lb):  # no lag can satisfy the time cover: not copies
        return 0.0
    size = fft.next_fast_len(la + lb - 1, real=True)
    xs, ys = np.asarray(x, np.float32), np.asarray(y, np.float32)
    # float32 FFTs: twice as fast, and their rounding (1e-7 of the peak) is far below any score
    # difference that matters
    spec = fft.rfft(xs, size) * np.conj(fft.rfft(ys, size))
    full = fft.irfft(spec, size)
    # only the lags whose overlap is long enough: lag in [lo, hi]
    need = int(np.ceil(TIME_COVER * max(la, lb)))
    lo, hi = need - lb, la - need
    lag = np.arange(lo, hi + 1)
    corr = full[lag % size].astype(np.float64)  # corr[k] = sum_n x[n + lag] * y[n]
    cx = np.concatenate([[0.0], np.cumsum(np.square(xs, dtype=np.float64))])
    cy = np.concatenate([[0.0], np.cumsum(np.square(ys, dtype=np.float64))])
    nb0 = np.maximum(0, -lag)
    nb1 = np.minimum(lb, la - lag)
    eb = cy[nb1] - cy[nb0]
    ea = cx[nb1 + lag] - cx[nb0 + lag]
    ok = (np.maximum(ea / cx[-1], eb / cy[-1]) >= ENERGY_COVER) & (ea > 0) & (eb > 0)
    if not ok.any():
        return 0.0
    score = np.full(len(corr), -np.inf)
    score[ok] = corr[ok] / np.sqrt(ea[ok] * eb[ok])
    best = int(np.argmax(score))
    # The copy's true offset is rarely a whole number of samples (0.3 s = 3307.5 samples here), and
    # half a sample off costs the upper band its correlation: read the band-limited correlation
    # between samples too (windowed-sinc interpolation around the peak).
    peak = max(corr[best], _between_samples(corr, best))
    return float(np.clip(peak / np.sqrt(ea[best] * eb[best]), -1.0, 1.0))


_TAPS = np.arange(-16, 17)
_FRACTIONS = np.linspace(-0.5, 0.5, 11)
_KERNEL = np.sinc(_FRACTIONS[:, None] - _TAPS[None, :]) * np.hanning(len(_TAPS) + 2)[1:-1][None, :]


def _between_samples(corr: np.ndarray, at: int) -> float:
    """The highest value of the correlation at fractional lags within half a sample of `at`."""
    idx = np.clip(at + _TAPS, 0, len(corr) - 1)
    return float((_KERNEL @ corr[idx]).max())


def candidate_pairs(vectors: np.ndarray, k: int = CANDIDATES, min_cosine: float = MIN_COSINE, block: int = 1024) -> dict[tuple[int, int], float]:
    """{(i, j): cosine} with i < j for each file's k nearest others (exact, in blocks of rows)."""
    n = len(vectors)
    k = min(k, n - 1)
    pairs: dict[tuple[int, int], float] = {}
    if k <= 0:
        return pairs
    v = np.asarray(vectors, dtype=np.float32)
    for start in range(0, n, block):
        sims = v[start : start + block] @ v.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not itself
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, js in enumerate(top):
            i = start + r
            for j in js:
                s = float(sims[r, j])
                if s >= min_cosine:
                    pairs[(min(i, int(j)), max(i, int(j)))] = s
    return pairs


def complete_linkage(n: int, edges: dict[tuple[int, int], float], threshold: float,
                     score: Callable[[int, int], float]) -> list[tuple[list[int], float]]:
    """Groups in which every pair scores >= threshold, built from the strongest edges first;
    `score` fills in pairs the candidate stage did not propose. Returns (members, weakest pair)."""
    group_of = {i: i for i in range(n)}
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    weakest: dict[int, float] = {i: 1.0 for i in range(n)}
    known = dict(edges)

    def pair(i: int, j: int) -> float:
        key = (min(i, j), max(i, j))
        if key not in known:
            known[key] = score(*key)
        return known[key]

    for (i, j), s in sorted(edges.items(), key=lambda e: -e[1]):
        if s < threshold:
            break
        gi, gj = group_of[i], group_of[j]
        if gi == gj:
            continue
        low = s
        for x in members[gi]:
            for y in members[gj]:
                low = min(low, pair(x, y))
                if low < threshold:
                    break
            if low < threshold:
                break
        if low < threshold:
            continue
        members[gi] += members.pop(gj)
        weakest[gi] = min(weakest[gi], weakest.pop(gj), low)
        for x in members[gi]:
            group_of[x] = gi
    return [(m, weakest[g]) for g, m in members.items() if len(m) > 1]


def keeper_order(item: dict) -> tuple:
    """The copy to keep comes first: lossless, then the first indexed (copies tend to arrive after
    their original), the highest sample rate, the shortest name ("x (1)", "x_copy" come later)."""
    name = str(item.get("name", ""))
    return (Path(str(item.get("path", ""))).suffix.lower() not in LOSSLESS, round(float(item.get("indexed_at") or 0)),
            -int(item.get("sample_rate") or 0), len(name), name)


@dataclass
class DupeGroup:
    score: float  # the weakest pair's correlation
    items: list[dict]  # id, name, label, path, duration, sample_rate; the suggested keeper first

    def as_dict(self) -> dict:
        fields = ("id", "name", "label", "path", "duration", "sample_rate")
        return {"score": round(self.score, 4), "items": [{k: it.get(k) for k in fields} for it in self.items]}


@dataclass
class DupesResult:
    threshold: float
    groups: list[DupeGroup] = field(default_factory=list)
    files: int = 0
    candidates: int = 0  # pairs the embedding stage proposed
    verified: int = 0  # pairs the precise stage scored
    unreadable: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def copies(self) -> list[dict]:
        """Every file but its group's suggested keeper: what "delete the extra copies" deletes."""
        return [it for g in self.groups for it in g.items[1:]]

    def as_dict(self, model: str, collection: str) -> dict:
        return {
            "model": model, "collection": collection, "threshold": self.threshold,
            "groups": [g.as_dict() for g in self.groups],
            "files": self.files, "candidate_pairs": self.candidates, "verified_pairs": self.verified,
            "seconds": round(self.seconds, 2),
        }


class DupeFinder:
    """One pass over a library: candidates, then their precise scores (kept, so that groups at
    several thresholds cost no more verification)."""

    def __init__(self, library, *, candidates: int = CANDIDATES):
        fields = ("id", "name", "label", "path", "duration", "sample_rate", "indexed_at")
        self.items = list(library.store.iterate(fields))
        self.edges: dict[tuple[int, int], float] = {}
        self.scores: dict[tuple[int, int], float] = {}
        self.unreadable: list[str] = []
        self._waves: dict[int, np.ndarray | None] = {}
        if len(self.items) >= 2:
            meta, vectors = library.vectors()
            pos = {fid: i for i, fid in enumerate(meta["id"])}
            self.edges = candidate_pairs(vectors[[pos[it["id"]] for it in self.items]], candidates)

    def _keep_wave(self, i: int, wave: np.ndarray | None) -> np.ndarray | None:
        self._waves[i] = wave
        if wave is None and self.items[i]["name"] not in self.unreadable:
            self.unreadable.append(self.items[i]["name"])
        return wave

    def _wave(self, i: int) -> np.ndarray | None:
        return self._waves[i] if i in self._waves else self._keep_wave(i, load_wave(self.items[i]["path"]))

    def score(self, i: int, j: int) -> float:
        key = (min(i, j), max(i, j))
        if key not in self.scores:
            a, b = self._wave(key[0]), self._wave(key[1])
            self.scores[key] = pair_score(a, b) if a is not None and b is not None else 0.0
        return self.scores[key]

    def verify(self, progress: Progress | None = None, workers: int | None = None) -> None:
        """Scores every candidate pair. Pairs go by their first file, so each file is decoded
        about once and dropped when no later pair needs it; decoding and correlation run in a
        few threads (the FFTs and numpy release the GIL: 2.5-3x faster on 2 cores, measured)."""
        workers = workers or min(4, os.cpu_count() or 1)
        total = len(self.edges)
        done = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dupes") as pool:
            for i, group in itertools.groupby(sorted(self.edges), key=lambda e: e[0]):
                js = [j for _, j in group]
                for x in [x for x in self._waves if x < i]:
                    self._waves.pop(x)
                missing = [x for x in (i, *js) if x not in self._waves]
                for x, wave in zip(missing, pool.map(lambda x: load_wave(self.items[x]["path"]), missing)):
                    self._keep_wave(x, wave)
                a = self._waves[i]
                scores = pool.map(lambda j: pair_score(a, self._waves[j]) if a is not None and self._waves[j] is not None else 0.0, js)
                for j, sc in zip(js, scores):
                    self.scores[(i, j)] = sc
                done += len(js)
                if progress:
                    progress(done, total, "comparing candidates")
        self._waves.clear()

    def groups(self, threshold: float = DEFAULT_THRESHOLD) -> list[DupeGroup]:
        threshold = check_threshold(threshold)
        verified = {e: self.score(*e) for e in self.edges}
        found = complete_linkage(len(self.items), verified, threshold, self.score)
        self._waves.clear()
        out = []
        for members, weakest in sorted(found, key=lambda g: (-g[1], -len(g[0]))):
            out.append(DupeGroup(weakest, sorted((self.items[i] for i in members), key=keeper_order)))
        return out


def check_threshold(threshold: float) -> float:
    """The threshold as a float, or ValueError when it is outside (0, 1]."""
    threshold = float(threshold)
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    return threshold


def find_dupes(library, threshold: float = DEFAULT_THRESHOLD, *, candidates: int = CANDIDATES,
               progress: Progress | None = None) -> DupesResult:
    """Groups of near-duplicate files in a `Library`, strongest first."""
    threshold = check_threshold(threshold)
    started = time.perf_counter()
    finder = DupeFinder(library, candidates=candidates)
    finder.verify(progress)
    groups = finder.groups(threshold)
    return DupesResult(threshold=threshold, groups=groups, files=len(finder.items), candidates=len(finder.edges),
                       verified=len(finder.scores), unreadable=finder.unreadable, seconds=time.perf_counter() - started)
