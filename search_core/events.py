"""Where sounds begin in a recording: the pieces that scan and monitor embed, besides the model's
regular windows, to propose library sounds for verification.

- `sound_events`: runs of frames louder than the local background. Each is a sound event of the
  "sounds like" layer (sounds_like.py) and a piece to embed.
- `onset_windows`: a piece from each onset inside an event to the next onset. Over music the runs
  last a second or more, and a short library sound at their end is a small part of the run's
  embedding: on the wild benchmark's tuning hour (benchmarks/wild.py) 55 of the 72 library sounds
  missed at the threshold were never proposed, although 46 of them score over it once verified.
  Cut at their own onset, most rank among the first candidates. Onset windows only propose
  candidates; they are not counted as sound events.
"""
from __future__ import annotations

import numpy as np

from .matching import FRAMES_PER_SECOND, HOP, RATE

ONSET_DELTA = 0.07  # librosa's peak-picking threshold over the onset strength's local mean
ONSET_WAIT = 0.1  # seconds between two onsets at least
ONSET_MIN_SECONDS = 0.25  # an onset window lasts this long at least, even if the next onset is sooner
EVENT_RISE_DB = 6.0


Window = tuple[float, float]


def pieces(feats: np.ndarray, offset: float, longest: float) -> tuple[list[Window], list[Window]]:
    """`sound_events` and `onset_windows` of the same log-mel frames, its runs found once."""
    runs = _runs(feats, EVENT_RISE_DB)
    return sound_events(feats, offset, longest, runs=runs), onset_windows(feats, offset, longest, runs=runs)


def sound_events(feats: np.ndarray, offset: float, longest: float, rise_db: float = EVENT_RISE_DB,
                 runs: list[tuple[int, int]] | None = None) -> list[Window]:
    """(start, end) seconds of the sound events in log-mel frames (matching.logmel): runs of frames
    louder than the local background (a running low percentile of frame energy) by `rise_db`,
    cut to `longest`. `runs`: those frame ranges, where the caller found them already."""
    out = []
    for a, b in _runs(feats, rise_db) if runs is None else runs:
        start = offset + a / FRAMES_PER_SECOND - 0.05
        end = min(offset + b / FRAMES_PER_SECOND + 0.1, start + longest)
        out.append((max(0.0, start), end))
    return out


def onset_windows(feats: np.ndarray, offset: float, longest: float, rise_db: float = EVENT_RISE_DB,
                  runs: list[tuple[int, int]] | None = None) -> list[Window]:
    """(start, end) seconds of a window from each onset inside a sound event (after its first
    frames, where the event's own window begins) to the next onset or the event's end,
    ONSET_MIN_SECONDS to `longest` long. `runs` as for sound_events."""
    import librosa

    runs = _runs(feats, rise_db) if runs is None else runs
    if not runs:
        return []
    strength = librosa.onset.onset_strength(S=feats, sr=RATE, hop_length=HOP)
    frames = librosa.onset.onset_detect(onset_envelope=strength, sr=RATE, hop_length=HOP, backtrack=True, delta=ONSET_DELTA,
                                        wait=int(ONSET_WAIT * FRAMES_PER_SECOND), units="frames")
    near = int(0.1 * FRAMES_PER_SECOND)
    out = []
    for a, b in runs:
        inside = [int(f) for f in frames if a + near < f < b]
        for f, following in zip(inside, inside[1:] + [b]):
            start = offset + f / FRAMES_PER_SECOND
            end = min(max(offset + following / FRAMES_PER_SECOND + 0.1, start + ONSET_MIN_SECONDS), start + longest)
            out.append((max(0.0, start - 0.05), end))
    return out


def _runs(feats: np.ndarray, rise_db: float) -> list[tuple[int, int]]:
    """Frame ranges louder than the running 10th percentile of energy (over 3 s) by `rise_db`,
    joined across gaps of 0.15 s, at least 3 frames long."""
    from scipy.ndimage import percentile_filter

    if feats.shape[1] == 0:
        return []
    energy = 10 * np.log10(np.sum(10 ** (feats.astype(np.float64) / 10), axis=0) + 1e-12)
    floor = percentile_filter(energy, 10, size=max(3, int(3.0 * FRAMES_PER_SECOND)), mode="nearest")
    active = np.concatenate([[False], energy > floor + rise_db, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    merged: list[list[int]] = []
    gap = int(0.15 * FRAMES_PER_SECOND)
    for a, b in zip(edges[::2], edges[1::2]):
        if merged and a - merged[-1][1] <= gap:
            merged[-1][1] = int(b)
        else:
            merged.append([int(a), int(b)])
    return [(a, b) for a, b in merged if b - a >= 3]
