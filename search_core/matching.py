"""The precise matching stage: is *this exact sound* here, and where does it start?

Embedding cosine says "sounds like"; it cannot tell a clip from a similar clip, nor give an onset
finer than its window. This stage aligns a template (a library clip, or a query) against a target
(a recording) by normalised cross-correlation of log-mel spectrograms, slid over time: the score is
the Pearson correlation of the template's log-mel with the target's at the best offset (1 = the
same spectrogram; a gain change is an offset in dB and does not lower it), and the offset is the
onset, to one hop (11.6 ms).

Shared by `scan` and `find` (a recording) and meant for the near-duplicate finder (file vs file).
Features: 64 mel bands up to 10 kHz at 22.05 kHz, hop 256, in dB; templates are trimmed of
leading and trailing silence so that a quiet tail does not match a noise bed.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 22050
HOP = 256
N_FFT = 1024
N_MELS = 64
FMAX = 10000.0
FLOOR_DB = -80.0  # dB under full scale; quieter bins are clamped here (silence is not detail)
TRIM_DB = 35.0  # template edges more than this under the template's peak frame are silence
# A sound rarely starts on the target's frame grid, and a short transient's log-mel changes with the
# frame phase: hedgewars_Droplet1 (0.24 s) in a mix correlated 0.84-0.89 depending on it. Templates
# are therefore made at PHASES offsets of the grid (0, 1/4, 1/2, 3/4 hop) and the best one counts.
PHASES = 4
FRAMES_PER_SECOND = RATE / HOP


def frames_to_seconds(frames: float) -> float:
    return float(frames) * HOP / RATE


def seconds_to_frames(seconds: float) -> int:
    return int(round(seconds * RATE / HOP))


_mel_basis: np.ndarray | None = None


def logmel(samples: np.ndarray) -> np.ndarray:
    """(N_MELS, frames) log-mel in dB (floored) of mono float32 audio at RATE."""
    global _mel_basis
    import librosa

    y = np.asarray(samples, dtype=np.float32)
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    if _mel_basis is None:  # a constant of the feature definition, computed once
        _mel_basis = librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=N_MELS, fmax=FMAX).astype(np.float32)
    spec = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True)) ** 2
    mel = _mel_basis @ spec
    # scaled so that a full-scale sine is near 0 dB: the floor is then a level under full scale
    return np.maximum(10.0 * np.log10(np.maximum(mel * (16.0 / N_FFT**2), 1e-12)), FLOOR_DB).astype(np.float32)


@dataclass
class Template:
    """A sound's log-mel, trimmed of silence. `lead` is the trimmed start (seconds) in the sound."""

    feats: np.ndarray  # (N_MELS, frames)
    lead: float
    length: float  # seconds of the sound the template covers (after trimming)
    duration: float  # seconds of the whole sound
    phases: tuple = ()  # the same frames of the sound delayed by k/PHASES of a hop (k = 1..PHASES-1)

    @property
    def frames(self) -> int:
        return self.feats.shape[1]


def make_template(samples: np.ndarray) -> Template | None:
    """Template of mono audio at RATE; None when it is silent."""
    feats = logmel(samples)
    duration = len(samples) / RATE
    energy = feats.max(axis=0)
    if energy.max() <= FLOOR_DB + 1e-3:
        return None
    loud = np.flatnonzero(energy >= energy.max() - TRIM_DB)
    first, last = int(loud[0]), int(loud[-1]) + 1
    if last - first < 3:  # keep at least a few frames: a click still has a shape
        last = min(feats.shape[1], first + 3)
    y = np.asarray(samples, dtype=np.float32)
    shifted = [logmel(np.concatenate([np.zeros(k * HOP // PHASES, np.float32), y]))[:, first:last] for k in range(1, PHASES)]
    return Template(np.ascontiguousarray(feats[:, first:last]), frames_to_seconds(first), frames_to_seconds(last - first), duration,
                    tuple(np.ascontiguousarray(f) for f in shifted if f.shape[1] == last - first))


def match_profile(tpl: Template, target: np.ndarray) -> np.ndarray:
    """`ncc_profile` of the template at its best frame phase, position by position. (The phase
    moves the onset by under one hop, 11.6 ms: not corrected.)"""
    return ncc_profiles([tpl.feats, *tpl.phases], target)


def ncc_profile(template: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Correlation of `template` (B, L) with every (B, L) window of `target` (B, N): an array of
    N - L + 1 scores in [-1, 1]. Each band is centred on its own mean (over the template, and over
    each window of the target), so the score is about the time-frequency pattern, not the spectral
    envelope: two different stationary noises (a waterfall, a rocket engine) do not correlate, the
    same recording of either does. Windows with no variance score 0."""
    return ncc_profiles([template], target)


def ncc_profiles(templates: list[np.ndarray], target: np.ndarray) -> np.ndarray:
    """The highest `ncc_profile` of several templates of one shape, position by position; the
    target's window statistics are computed once for all of them."""
    from scipy.signal import fftconvolve

    b, length = templates[0].shape
    n = target.shape[1]
    if n < length:
        return np.zeros(0, dtype=np.float32)
    x = target.astype(np.float64)
    c1 = np.concatenate([np.zeros((b, 1)), np.cumsum(x, axis=1)], axis=1)
    c2 = np.concatenate([np.zeros((b, 1)), np.cumsum(x * x, axis=1)], axis=1)
    s1 = c1[:, length:] - c1[:, :-length]
    s2 = c2[:, length:] - c2[:, :-length]
    norm_x = np.sqrt(np.maximum(s2 - s1 * s1 / length, 0.0).sum(axis=0))
    best = np.full(n - length + 1, -1.0)
    for template in templates:
        t = template.astype(np.float64)
        t = t - t.mean(axis=1, keepdims=True)
        t_norm = float(np.sqrt((t * t).sum()))
        num = fftconvolve(x, t[::-1, ::-1], mode="valid")[0]  # per-band centring of x cancels against centred t
        den = t_norm * norm_x
        with np.errstate(divide="ignore", invalid="ignore"):
            best = np.maximum(best, np.where(den > 1e-6 * max(t_norm, 1e-12), num / den, 0.0))
    return np.clip(best, -1.0, 1.0).astype(np.float32)


def peaks(profile: np.ndarray, threshold: float, min_distance: int) -> list[tuple[int, float]]:
    """Local maxima >= threshold, at least `min_distance` frames apart (the higher one wins)."""
    above = np.flatnonzero(profile >= threshold)
    if above.size == 0:
        return []
    order = above[np.argsort(-profile[above], kind="stable")]
    taken: list[int] = []
    for i in order:
        if all(abs(int(i) - j) >= min_distance for j in taken):
            taken.append(int(i))
    return sorted((i, float(profile[i])) for i in taken)


class TemplateCache:
    """Templates of library sounds by (path, start, end), decoded once; bounded (LRU). `make` turns
    mono audio at RATE into a template (or None): a verifier's own template maker."""

    def __init__(self, size: int = 512, make=None):
        import threading

        self.size = size
        self.make = make or make_template
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()  # scans, live sessions and a warm-up (levels.py) share one cache

    def get(self, path: str, start: float = 0.0, end: float | None = None) -> Template | None:
        """The template of a file (or of its [start, end] seconds); None if unreadable or silent."""
        key = (path, round(start, 3), None if end is None else round(end, 3))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        from .audio import AudioError, load_audio

        try:
            clip = load_audio(Path(path), RATE)
            samples = clip.samples
            if end is not None:
                samples = samples[int(round(start * RATE)) : int(round(end * RATE))]
            tpl = self.make(samples)
        except (AudioError, OSError):
            tpl = None
        with self._lock:  # built outside the lock: two threads may build one template, and keep one
            self._items[key] = tpl
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return tpl


def segment_template(verifier, path: str, start: float, end: float, duration: float):
    """A library row's template: its segment's (start, end) when the row is a segment of a longer
    file, else the whole file's; and whether it is a segment."""
    segmented = end - start < float(duration) - 1e-3
    return (verifier.template(path, start, end) if segmented else verifier.template(path)), segmented
