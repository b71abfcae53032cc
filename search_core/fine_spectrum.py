"""Is one sound another one at another pitch? The fine-spectrum check of `dupes`.

A pitch shifter that keeps the tempo (a phase vocoder, then resampling) keeps neither the waveform
nor the sample-by-sample timing, so the waveform and tape-speed checks of copies.py cannot see its
output. What it keeps is each time-frequency cell's magnitude, moved in frequency by the pitch
ratio: the spectrum's fine detail (each cell in dB over the mean of its 5 x 5 neighbours: the
speckle of a noise, the exact partials of a voice) moves with it. Two takes of one kind of sound
share the coarse shape (the envelope, the band, the warped verifier's 1/24-octave bands) but not
that detail.

So the copy's spectrogram is read at the original's frequencies times the pitch ratio (searched
within PITCH_SPAN of the warped check's estimate, coarse then fine), and the two details are
correlated over the cells where either is loud, at lags within LAGS frames. The best of those
trials over unrelated sounds reaches about CHANCE / sqrt(cells); the score is 1 - c / r, 0 under
chance: 0.8 means the details agree five times as well as chance lets unrelated sounds agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .warped import RATE  # copies.Sound.audio is kept at it

N_FFT = 2048  # 10.8 Hz bins: a noise's speckle is a bin or two wide
HOP = 256
FMIN, FMAX = 100.0, 10000.0
FLOOR_DB = 60.0  # under the file's peak cell: clipped (the detail of silence is rounding noise)
LOUD_DB = 40.0  # a cell this close to its file's peak is compared
DETAIL = (5, 5)  # bins x frames of the local mean that detail is taken from
SECONDS = 3.0  # of each file compared, from the start of the shorter one's occurrence
PITCH_SPAN = 0.4  # semitones either side of the estimate (the warped check's steps are 0.5)
COARSE, FINE = 0.1, 0.02  # semitone steps of the search (the detail keeps ~0.9 of its best 0.02 away)
LAGS = 8  # frames either side (93 ms)
# Chosen on the dupes tuning seeds 7 and 12 (32 pitched copies of bundled clips, r sqrt(cells)
# 28 and more) against the pairs that reach this check among the bundled clips of one label and
# among 120 generated sounds of seed 12 (r sqrt(cells) at most 14 once the level check has run):
# copies score 0.82-0.97, the closest other sound 0.64.
CHANCE = 5.0
# The tempo is kept, so the level over time is too: each frame's level (dB, over the compared
# bins, where either file is within ENVELOPE_RANGE of its loudest) differs from the original's by
# a constant gain. Measured as the RMS of that difference less its median: pitched copies of the
# tuning seeds 0.2-3.1 dB; steady tones of other decays, which share a ridge of fine detail with
# any tone (two generated FM tones scored 0.82 without it), 7.5 and 11.5 dB.
ENVELOPE_DB = 5.0
INDEPENDENCE_FRAMES = 4  # half the analysis window: a noise's speckle is new there
INDEPENDENCE_BINS = 2
ENVELOPE_RANGE = 30.0


@dataclass
class FinePitch:
    score: float
    pitch_semitones: float  # the refined estimate
    cells: int


def _spectrogram(samples: np.ndarray) -> np.ndarray:
    import librosa

    mag = np.abs(librosa.stft(np.asarray(samples, np.float32), n_fft=N_FFT, hop_length=HOP, center=True))
    db = 20.0 * np.log10(mag + 1e-9)
    return np.maximum(db, db.max() - FLOOR_DB).astype(np.float32)


def _detail(db: np.ndarray) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return db - uniform_filter(db, size=DETAIL, mode="nearest")


def _bins() -> tuple[int, int]:
    return int(FMIN * N_FFT / RATE), int(FMAX * N_FFT / RATE)


def _read_at(db: np.ndarray, ratio: float) -> np.ndarray:
    """The spectrogram's rows read at the compared bins' frequencies times `ratio` (linear
    interpolation; rows past the top are the floor)."""
    lo, hi = _bins()
    src = np.arange(lo, hi) * ratio
    i0 = np.clip(np.floor(src).astype(int), 0, db.shape[0] - 2)
    w = (src - i0)[:, None].astype(np.float32)
    out = db[i0] * (1 - w) + db[i0 + 1] * w
    out[src >= db.shape[0] - 1] = db.min()
    return out


def _correlation(da: np.ndarray, la: np.ndarray, db: np.ndarray, lb: np.ndarray, lag: int) -> tuple[float, int]:
    """The correlation of two details at one lag (frames of `db` after `da`'s), over the cells
    where either is loud, each less its mean there; and how many cells that is."""
    if lag >= 0:
        da, la = da[:, lag:], la[:, lag:]
    else:
        db, lb = db[:, -lag:], lb[:, -lag:]
    n = min(da.shape[1], db.shape[1])
    if n < 5:
        return -1.0, 0
    m = la[:, :n] | lb[:, :n]
    cells = int(m.sum())
    if cells < 50:
        return -1.0, cells
    x, y = da[:, :n][m], db[:, :n][m]
    x = x - x.mean()
    y = y - y.mean()
    denom = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return (float(np.dot(x, y)) / denom if denom > 0 else -1.0), cells


def independence(detail: np.ndarray, loud: np.ndarray) -> float:
    """The share of the loud cells that count as independent: 1 less the detail's correlation
    with itself INDEPENDENCE_FRAMES later, times 1 less it INDEPENDENCE_BINS higher. A noise's
    speckle changes from frame to frame and bin to bin; a steady tone's ridge, or a slow sweep's,
    is the same cell after cell, and its cell count says nothing about chance."""
    d = np.where(loud, detail - detail[loud].mean(), 0.0) if loud.any() else np.zeros_like(detail)
    energy = float(np.sum(d * d))
    if energy <= 0:
        return 0.0
    t, f = INDEPENDENCE_FRAMES, INDEPENDENCE_BINS
    along_time = float(np.sum(d[:, :-t] * d[:, t:])) / energy if d.shape[1] > t else 1.0
    along_freq = float(np.sum(d[:-f] * d[f:])) / energy if d.shape[0] > f else 1.0
    return float(np.clip(1.0 - along_time, 0.0, 1.0) * np.clip(1.0 - along_freq, 0.0, 1.0))


def _level(db: np.ndarray) -> np.ndarray:
    """Each frame's level in dB (mean power over the compared bins)."""
    lo, hi = _bins()
    return 10.0 * np.log10(np.mean(10.0 ** (db[lo:hi] / 10.0), axis=0) + 1e-12)


def envelope_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The RMS difference of two spectrograms' level curves less its median (a gain), over the
    frames where either is loud, at the best lag within LAGS frames (dB)."""
    la, lb = _level(a), _level(b)
    best = np.inf
    for lag in range(-LAGS, LAGS + 1):
        x, y = (la[lag:], lb) if lag >= 0 else (la, lb[-lag:])
        n = min(x.size, y.size)
        if n < 5:
            continue
        x, y = x[:n], y[:n]
        d = (x - y)[(x > la.max() - ENVELOPE_RANGE) | (y > lb.max() - ENVELOPE_RANGE)]
        if d.size:
            best = min(best, float(np.sqrt(np.mean((d - np.median(d)) ** 2))))
    return best


def fine_pitch(short: np.ndarray, long_: np.ndarray, semitones: float, offset: float = 0.0) -> FinePitch:
    """How well `long_` (from `offset` seconds in) is `short` moved `semitones` up (near it),
    both mono at RATE: the fine-detail score of the module's docstring."""
    start = max(0, int((offset - 0.05) * RATE))
    x = np.asarray(short[: int(SECONDS * RATE)], np.float32)
    y = np.asarray(long_[start : start + int((SECONDS + 0.1) * RATE)], np.float32)
    if min(x.size, y.size) < N_FFT:
        return FinePitch(0.0, semitones, 0)
    lo, hi = _bins()
    xa = _spectrogram(x)
    yb = _spectrogram(y)
    if envelope_distance(xa, yb) > ENVELOPE_DB:
        return FinePitch(0.0, semitones, 0)
    da, la = _detail(xa)[lo:hi], xa[lo:hi] > xa.max() - LOUD_DB

    def at(s: float) -> tuple[np.ndarray, np.ndarray]:
        yi = _read_at(yb, 2.0 ** (s / 12.0))
        return _detail(yi), yi > yb.max() - LOUD_DB

    # the lag first, at the estimate (it hardly depends on the pitch), then the pitch at that lag
    db, lb = at(semitones)
    lag = max(range(-LAGS, LAGS + 1), key=lambda k: _correlation(da, la, db, lb, k)[0])
    tried: dict[float, tuple[float, int]] = {}

    def trial(s: float) -> tuple[float, int]:
        return _correlation(da, la, *at(s), lag)

    for s in np.arange(semitones - PITCH_SPAN, semitones + PITCH_SPAN + 1e-9, COARSE):
        tried[round(float(s), 3)] = trial(float(s))
    around = max(tried, key=lambda k: tried[k][0])
    for s in np.arange(around - COARSE + FINE, around + COARSE - FINE / 2, FINE):
        key = round(float(s), 3)
        if key not in tried:
            tried[key] = trial(key)
    best = max(tried, key=lambda k: tried[k][0])
    db, lb = at(best)
    r, cells = max(_correlation(da, la, db, lb, k) for k in (lag - 1, lag, lag + 1))
    if r <= 0 or cells == 0:
        return FinePitch(0.0, best, cells)
    cells = int(cells * min(independence(da, la), independence(db, lb)))
    if cells == 0:
        return FinePitch(0.0, best, cells)
    c = CHANCE / np.sqrt(cells)
    return FinePitch(float(max(0.0, 1.0 - c / r)), best, cells)
