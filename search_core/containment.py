"""Library files that hold another library file: a clip cut from a longer recording.

`dupes` groups files that are the same sound; a pair where one file is under half the other's
length is never a duplicate there (copies.TIME_COVER), because a short click inside a long file
is not a copy of it. But when the click *is* a piece of the long file (a clip cut from an
ambience, a hit taken from a longer take), that is worth knowing too: it is reported as
contained, with where it begins, and never deleted as a copy (the clip is its own asset).

Two stages, like dupes:
1. candidates: each file's vector against every segment vector of the files at least twice its
   length (a long file's segments are a few seconds each: the one holding the clip is near it);
   the files of its NEIGHBOURS nearest segments;
2. verification: the clip's waveform (at copies.RATE, its silence trimmed) slid along the whole
   of the longer file's (up to LONG_SECONDS), normalised over each window (a matched filter), its
   peak read between samples, and rescaled against chance as copies.wave_score is over the clip's
   length. A cut clip scores 0.9-1.0 (re-encoded as OGG: 0.95 and up); another sound of the same
   kind does not line up sample by sample.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioError, load_audio
from .copies import RATE, TIME_COVER, _between_samples, audible_wave, power_spectrum, rescaled, running_energy

NEIGHBOURS = 30  # segments per file whose files are verified (10 proposed 14 of the 16 cuts of seed 7, 30 all)
MIN_COSINE = 0.5  # as dupes' candidates
LONG_SECONDS = 600.0  # of the longer file searched (from its audible start)
MIN_CLIP_SECONDS = 0.1  # a clip shorter than this holds too few samples to be told apart
FIELDS = ("id", "name", "label", "path", "duration", "sample_rate")


@dataclass
class Containment:
    score: float  # the clip's waveform correlation at its place, rescaled against chance
    offset: float  # seconds into the longer file where the clip's file begins
    clip: dict  # the shorter file (id, name, label, path, duration, sample_rate)
    within: dict  # the longer file

    def as_dict(self) -> dict:
        return {"score": round(self.score, 4), "offset": round(self.offset, 3),
                "clip": {k: self.clip.get(k) for k in FIELDS}, "within": {k: self.within.get(k) for k in FIELDS}}


@dataclass
class Wave:
    """A file's audible part at RATE, where it begins in the file, and its power spectrum."""

    samples: np.ndarray
    start: float  # seconds
    spectrum: np.ndarray


def load_wave(path: str | Path, seconds: float) -> Wave | None:
    """The file's audible part (at most `seconds` of it); None when unreadable or silent."""
    try:
        samples = load_audio(Path(path), RATE).samples
    except (AudioError, OSError):
        return None
    found = audible_wave(samples, RATE, seconds)
    if found is None:
        return None
    wave, begin = found
    spectrum = power_spectrum(wave)
    return None if spectrum is None else Wave(wave.astype(np.float32), begin / RATE, spectrum)


def contained_score(clip: Wave, long_: Wave, spectrum: np.ndarray | None = None,
                    energy: np.ndarray | None = None) -> tuple[float, float]:
    """(score, lag in seconds) of `clip`'s whole audible part at its best place inside `long_`.
    `spectrum` (long_'s rfft at fft size 2 (len - 1) + 1 or more) and `energy` (its
    running_energy): made once for all the clips checked against it."""
    from scipy import fft

    x, y = clip.samples, long_.samples
    n, m = x.size, y.size
    if n < MIN_CLIP_SECONDS * RATE or m < n:
        return 0.0, 0.0
    if spectrum is None:
        spectrum = fft.rfft(y, fft.next_fast_len(2 * m, real=True))
    size = 2 * (spectrum.size - 1)
    full = fft.irfft(spectrum * np.conj(fft.rfft(x, size)), size)[: m - n + 1].astype(np.float64)
    if energy is None:
        energy = running_energy(y)
    window = energy[n:] - energy[:-n]  # energy of y[lag : lag + n]
    ex = float(np.sum(np.square(x, dtype=np.float64)))
    loud = window > 1e-6 * window.max()
    if ex <= 0 or not loud.any():
        return 0.0, 0.0
    r = np.where(loud, full / np.sqrt(ex * np.maximum(window, 1e-30)), -np.inf)
    best = int(np.argmax(r))
    peak = max(full[best], _between_samples(full, best)) / np.sqrt(ex * window[best])
    return rescaled(float(min(1.0, peak)), n / RATE, clip.spectrum, long_.spectrum), best / RATE


def candidate_pairs(items: list[dict], library, neighbours: int = NEIGHBOURS,
                    block: int = 512) -> dict[tuple[int, int], float]:
    """{(clip index, longer file index): best segment cosine} over `items` (the store's files)."""
    if len(items) < 2:
        return {}
    meta, vectors = library.vectors()
    pos = {fid: i for i, fid in enumerate(meta["id"])}
    index = {it["id"]: i for i, it in enumerate(items)}
    files = np.asarray(vectors[[pos[it["id"]] for it in items]], np.float32)
    seg_ids, segs = library.store.segment_vectors()
    owner = np.array([index.get(fid, -1) for fid in seg_ids])
    keep = owner >= 0
    owner, segs = owner[keep], np.asarray(segs[keep], np.float32)
    durations = np.array([float(it.get("duration") or 0.0) for it in items])
    seg_length = durations[owner]
    pairs: dict[tuple[int, int], float] = {}
    k = min(neighbours, len(owner))
    for start in range(0, len(items), block):
        sims = files[start : start + block] @ segs.T
        # only files that a duplicate pair cannot be: at least 1 / TIME_COVER times the clip's length
        too_short = seg_length[None, :] * TIME_COVER < durations[start : start + block, None]
        sims[too_short] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, js in enumerate(top):
            for j in js:
                s = float(sims[r, j])
                if s >= MIN_COSINE:
                    key = (start + r, int(owner[j]))
                    pairs[key] = max(pairs.get(key, -1.0), s)
    return pairs


def find_contained(items: list[dict], library, threshold: float, workers: int | None = None) -> list[Containment]:
    """Every (clip, longer file) pair of `items` whose clip lies inside the longer file with a
    score >= threshold, strongest first; a clip is reported inside each file that holds it."""
    pairs = candidate_pairs(items, library)
    by_long: dict[int, list[int]] = {}
    for clip, long_ in sorted(pairs):
        by_long.setdefault(long_, []).append(clip)
    clips: dict[int, Wave | None] = {}
    locks: dict[int, threading.Lock] = {}
    guard = threading.Lock()

    def clip_wave(i: int) -> Wave | None:
        """Each clip decoded once, though several workers' longer files may want it at once."""
        with guard:
            lock = locks.setdefault(i, threading.Lock())
        with lock:
            if i not in clips:
                clips[i] = load_wave(items[i]["path"], LONG_SECONDS)
            return clips[i]

    def check(long_: int) -> list[Containment]:
        from scipy import fft

        within = load_wave(items[long_]["path"], LONG_SECONDS)
        if within is None:
            return []
        spectrum = fft.rfft(within.samples, fft.next_fast_len(2 * within.samples.size, real=True))
        energy = running_energy(within.samples)
        found = []
        for i in by_long[long_]:
            clip = clip_wave(i)
            if clip is None:
                continue
            score, lag = contained_score(clip, within, spectrum, energy)
            if score >= threshold:
                found.append(Containment(score, max(0.0, within.start + lag - clip.start), items[i], items[long_]))
        return found

    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="contained") as pool:
        out = [c for part in pool.map(check, sorted(by_long)) for c in part]
    return sorted(out, key=lambda c: (-c.score, c.clip["name"], c.within["name"]))
