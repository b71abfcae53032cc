"""The warp-tolerant verifier: is *this recording* here, even played faster, pitched, stretched,
filtered or under music, and how was it changed?

`matching.py` correlates 64-band log-mel spectrograms, each band centred: it tells "a sound of this
shape" and breaks when the pitch or tempo moves (a tape at 1.05 moves every partial). Measured on
the wild benchmark (benchmarks/wild.py), other games' gunshots and explosions score 0.85-0.88 there
and pitched copies fall under 0.6. This verifier differs in three ways:

1. **log-frequency features** (24 bands per octave, 100 Hz-10 kHz, hop 256 at 22.05 kHz, a 2048-point
   FFT for fine frequency detail): a pitch change is a shift along the band axis, so every shift
   within +-MAX_SHIFT bands (+-2.5 semitones) is scored in one 2-D correlation; time scales
   (TIME_SCALES, 0.9-1.1) are the template resampled in time. Tape speed is both at once.
2. **only the template's salient cells** (its loudest MASK_FRACTION of time-frequency cells) are
   compared: where the library sound is quiet the recording holds whatever else is playing, which
   says nothing about whether the sound is there.
3. **two correlations over those cells**, at the same alignment: of the spectrogram itself (its
   shape: "envelope") and of its fine detail (the spectrogram minus its 5x5-cell local mean). The
   detail of a noise-like sound - a gunshot's exact crackle - is particular to one recording;
   another gunshot has the same envelope and unrelated detail. The score is (2 x detail + envelope) / 3.

Each variant's correlation is then rescaled against its chance level (CHANCE): a short template
with few cells reaches higher correlations by chance than a long one, so the same raw value means
less. A score of 1 is the template's spectrogram exactly, 0 what chance gives a template of its
size; different recordings of the same kind of sound stay under 0.5 over the wild benchmark's music
and distractors (the best of all scales, shifts and positions). `warped-bg` (verifiers.py) takes
these scores against each template's level on a fixed background (`normalised`), and the default,
`warped-room`, also tries each alignment as the sound through a room (room_check.py); the threshold
(scan.DEFAULT_THRESHOLD) was chosen on the wild benchmark's tuning seeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

RATE = 22050
HOP = 256  # the same frame rate as matching.py: scan's ranges hold for either verifier
N_FFT = 2048
BANDS_PER_OCTAVE = 24
FMIN = 100.0
FMAX = 10000.0
FLOOR_DB = -100.0
TRIM_DB = 35.0
MAX_SHIFT = 5  # bands (+-2.5 semitones)
TIME_SCALES = (0.9, 0.95, 1.0, 1.05, 1.1)  # the occurrence's length over the library sound's
MASK_FRACTION = 0.3
DETAIL_SIZE = (5, 5)  # bands x frames of the local mean that detail is taken from
DETAIL_WEIGHT = 2.0
FRAMES_PER_SECOND = RATE / HOP
# Channels a copy may have passed through, each a template variant at the original time scale: the
# library sound as a telephone line would carry it (4th-order 300-3400 Hz band-pass, applied to its
# spectrogram). Without it a band-limited copy loses the template's low and high salient cells to
# whatever else is playing there (measured: telephone copies 6 of 13 at the threshold, with it 13).
CHANNELS: tuple[str, ...] = ("telephone",)
TELEPHONE_BAND = (300.0, 3400.0)
# Chance: the best of many correlations over N cells reaches about CHANCE / sqrt(N) on audio that
# is not the sound (the maximum of noise over every scale, shift and position); a short template
# reaches more than a long one. Each variant's score is rescaled so that its chance level is 0 and
# an exact copy still 1: (r - c) / (1 - c), c = CHANCE / sqrt(cells). CHANCE was chosen on the wild
# benchmark's tuning seeds (false alarms were short templates: 0.14-0.65 s).
CHANCE = 5.0
MAX_CHANCE = 0.6  # keeps 1 - c away from 0 for the tiniest templates (under ~70 cells)
# Where the recording is (nearly) constant under the template's cells - digital silence, the floor -
# its variance is the float32 transforms' rounding, and a correlation divided by it is noise that
# can exceed 1. Under MIN_SPREAD dB of standard deviation over those cells nothing is compared.
MIN_SPREAD = 0.5

_filterbank: np.ndarray | None = None


def _bank() -> np.ndarray:
    """Triangular filters centred every 1/24 octave (at least one FFT bin each)."""
    global _filterbank
    if _filterbank is None:
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
        n = int(BANDS_PER_OCTAVE * np.log2(FMAX / FMIN))
        fb = np.zeros((n, freqs.size), np.float32)
        for i, c in enumerate(FMIN * 2 ** (np.arange(n) / BANDS_PER_OCTAVE)):
            lo, hi = c * 2 ** (-1 / BANDS_PER_OCTAVE), c * 2 ** (1 / BANDS_PER_OCTAVE)
            w = np.maximum(0.0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
            if w.sum() == 0:
                w[np.argmin(np.abs(freqs - c))] = 1.0
            fb[i] = w / w.sum()
        _filterbank = fb
    return _filterbank


def logspec(samples: np.ndarray) -> np.ndarray:
    """(bands, frames) log-frequency power in dB (floored) of mono float32 audio at RATE."""
    import librosa

    y = np.asarray(samples, dtype=np.float32)
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    spec = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True)) ** 2
    return np.maximum(10.0 * np.log10(_bank() @ spec + 1e-10), FLOOR_DB).astype(np.float32)


def detail(feats: np.ndarray) -> np.ndarray:
    """The features minus their local mean: what is particular to one recording."""
    from scipy.ndimage import uniform_filter

    f = feats.astype(np.float32)
    return f - uniform_filter(f, size=DETAIL_SIZE, mode="nearest")


@dataclass
class Target:
    """A recording's features, computed once per block and shared by every template."""

    feats: np.ndarray
    detail: np.ndarray

    @classmethod
    def of(cls, samples: np.ndarray) -> "Target":
        f = logspec(samples)
        return cls(f, detail(f))

    @property
    def frames(self) -> int:
        return self.feats.shape[1]


@dataclass
class Variant:
    """The template at one time scale, ready for the correlations (inner bands only)."""

    scale: float
    channel: str  # "" (as the library holds it) or one of CHANNELS
    env: np.ndarray  # centred over the mask, zero elsewhere, divided by its norm
    det: np.ndarray
    mask: np.ndarray
    raw: np.ndarray  # the masked cells' levels (for the gain estimate)
    cells: float

    @property
    def chance(self) -> float:
        """What the best correlation of this variant reaches by chance (see CHANCE)."""
        return min(MAX_CHANCE, CHANCE / float(np.sqrt(max(self.cells, 1.0))))


@dataclass
class WarpTemplate:
    lead: float  # seconds of silence trimmed before the template
    length: float  # seconds the template covers
    duration: float  # seconds of the whole sound
    variants: list[Variant]
    background: float | None = None  # its best score on background.py's audio, once a verifier has asked
    wave: object = None  # a verifier's own view of the sound's waveform (verifiers.RoomVerifier: room_check.Dry)

    @property
    def frames(self) -> int:  # the longest variant: the most a target must hold
        return max(v.mask.shape[1] for v in self.variants)


def _stretch(feats: np.ndarray, scale: float) -> np.ndarray:
    n_in = feats.shape[1]
    n = max(3, int(round(n_in * scale)))
    x = np.linspace(0, n_in - 1, n)
    i = np.floor(x).astype(int)
    f = (x - i).astype(np.float32)
    j = np.minimum(i + 1, n_in - 1)
    return feats[:, i] * (1 - f) + feats[:, j] * f


def _unit(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = mask.sum()
    c = mask * (x - (x * mask).sum() / n)
    norm = float(np.sqrt((c * c).sum()))
    return c / norm if norm > 1e-9 else c


def band_centres() -> np.ndarray:
    return FMIN * 2 ** (np.arange(_bank().shape[0]) / BANDS_PER_OCTAVE)


def through(feats: np.ndarray, channel: str) -> np.ndarray:
    """The features as `channel` would pass them (a gain per band, in dB)."""
    if channel != "telephone":
        raise ValueError(f"unknown channel {channel!r}")
    f, (lo, hi) = band_centres(), TELEPHONE_BAND
    gain = 10 * np.log10(1 / (1 + (lo / f) ** 8) / (1 + (f / hi) ** 8))
    return np.maximum(feats + gain[:, None].astype(np.float32), FLOOR_DB)


def _variant(core: np.ndarray, scale: float, channel: str = "") -> Variant:
    f = _stretch(core, scale)
    d = detail(f)[MAX_SHIFT:-MAX_SHIFT].astype(np.float64)
    f = f[MAX_SHIFT:-MAX_SHIFT].astype(np.float64)
    mask = (f >= np.quantile(f, 1.0 - MASK_FRACTION)).astype(np.float32)
    if mask.sum() < 8:
        mask = np.ones_like(f)
    return Variant(scale, channel, _unit(f, mask).astype(np.float32), _unit(d, mask).astype(np.float32), mask,
                   (f * mask).astype(np.float32), float(mask.sum()))


def make_warp_template(samples: np.ndarray, scales: tuple[float, ...] | None = None,
                       channels: tuple[str, ...] | None = None) -> WarpTemplate | None:
    """Template of mono audio at RATE, at each time scale (TIME_SCALES unless given), and through
    each channel (CHANNELS unless given) at the original scale; None when it is silent. The
    module's constants are read at each call, so a caller (or a test) may change them."""
    scales = TIME_SCALES if scales is None else scales
    channels = CHANNELS if channels is None else channels
    feats = logspec(samples)
    energy = feats.max(axis=0)
    if energy.max() <= FLOOR_DB + 1e-3:
        return None
    loud = np.flatnonzero(energy >= energy.max() - TRIM_DB)
    first, last = int(loud[0]), max(int(loud[-1]) + 1, int(loud[0]) + 3)
    last = min(last, feats.shape[1])
    core = feats[:, first:last]
    variants = [_variant(core, scale) for scale in scales]
    variants += [_variant(through(core, channel), 1.0, channel) for channel in channels]
    return WarpTemplate(first * HOP / RATE, (last - first) * HOP / RATE, len(samples) / RATE, variants)


def _spectrum(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from scipy import fft

    return fft.rfft2(a, s=shape, workers=-1)


@lru_cache(maxsize=8)
def _inverse_rows(rows: int, n: int) -> np.ndarray:
    """The first `rows` rows of the inverse DFT of length n (complex64), made once per size."""
    k = np.arange(rows)[:, None] * np.arange(n)[None, :]
    return (np.exp(2j * np.pi * k / n) / n).astype(np.complex64)


def _back(spectra: np.ndarray, shape: tuple[int, int], rows: int, cols: int) -> np.ndarray:
    """The first `rows` x `cols` of the inverse 2-D transforms of (..., shape[0], F) spectra. The
    band axis is inverted only for the rows kept (a small DFT matrix product), the time axis whole."""
    from scipy import fft

    inverse = _inverse_rows(rows, shape[0]).astype(spectra.dtype, copy=False)
    return fft.irfft(inverse @ spectra, n=shape[1], axis=-1, workers=-1)[..., :cols]


def score_profile(tpl: WarpTemplate, target: Target, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Best score per template start in [lo, hi] (frames of the target) over every scale and shift,
    and the index (scale * shifts + shift) that gave it.

    Correlations go through 2-D FFTs, circular in both axes: the transform only needs to be as large
    as the target slice, since a template no larger than it cannot wrap into the rows (shifts
    0..2 x MAX_SHIFT) and columns (positions) that are kept. The target's four spectra are computed
    once for all scales; per scale only the template's three."""
    positions = hi - lo + 1
    best = np.full(positions, -1.0)
    which = np.zeros(positions, dtype=np.int64)
    shifts = 2 * MAX_SHIFT + 1
    end = min(target.frames, hi + tpl.frames)
    if end <= lo:
        return best, which
    from scipy.fft import next_fast_len

    # single precision halves the transforms' cost; centring x (correlations ignore a constant)
    # keeps its sums of squares small enough for float32 to hold the variances
    x = target.feats[:, lo:end] - np.float32(target.feats[:, lo:end].mean())
    d = target.detail[:, lo:end]
    shape = (next_fast_len(x.shape[0], real=True), next_fast_len(x.shape[1], real=True))
    fx, fx2, fd, fd2 = (_spectrum(a, shape) for a in (x, x * x, d, d * d))
    for k, v in enumerate(tpl.variants):
        length = v.mask.shape[1]
        cols = min(positions, x.shape[1] - length + 1)
        if cols <= 0:
            continue
        fm = np.conj(_spectrum(v.mask, shape))
        products = np.empty((6, *fx.shape), dtype=fx.dtype)
        np.multiply(fx, np.conj(_spectrum(v.env, shape)), out=products[0])
        np.multiply(fx, fm, out=products[1])
        np.multiply(fx2, fm, out=products[2])
        np.multiply(fd, np.conj(_spectrum(v.det, shape)), out=products[3])
        np.multiply(fd, fm, out=products[4])
        np.multiply(fd2, fm, out=products[5])
        num_e, sx, sxx, num_d, sd, sdd = _back(products, shape, shifts, cols).astype(np.float64)
        combined = np.zeros((shifts, cols))
        for weight, num, s1, s2 in ((1.0, num_e, sx, sxx), (DETAIL_WEIGHT, num_d, sd, sdd)):
            var = s2 - s1 * s1 / v.cells
            with np.errstate(divide="ignore", invalid="ignore"):
                combined += weight * np.where(var > v.cells * MIN_SPREAD**2, num / np.sqrt(np.maximum(var, 1e-12)), 0.0)
        combined /= DETAIL_WEIGHT + 1.0
        chance = v.chance
        combined = (combined - chance) / (1.0 - chance)
        arg = np.argmax(combined, axis=0)
        top = combined[arg, np.arange(cols)]
        better = top > best[:cols]
        best[:cols] = np.where(better, top, best[:cols])
        which[:cols] = np.where(better, k * shifts + arg, which[:cols])
    return np.clip(best, -1.0, 1.0), which


def normalised(scores: np.ndarray, background: float) -> np.ndarray:
    """Scores rescaled against the template's own chance level, its best score on a background
    that does not hold it (background.py): that level is 0, an exact copy still 1. A template that
    fits any music or any voice there needs a closer fit in a recording to score as much as one
    that fits nothing there."""
    b = min(max(background, 0.0), 0.9)
    return np.clip((np.asarray(scores) - b) / (1.0 - b), -1.0, 1.0)


def alignment(tpl: WarpTemplate, target: Target, position: int, which: int) -> tuple[float, float, float, str]:
    """What the best variant at `position` says: (time scale, pitch shift in semitones, gain in dB,
    the median level difference over the salient cells, the recording against the library sound,
    and the channel: "" or one of CHANNELS)."""
    shifts = 2 * MAX_SHIFT + 1
    v = tpl.variants[which // shifts]
    shift = which % shifts - MAX_SHIFT
    length = v.mask.shape[1]
    x = target.feats[MAX_SHIFT + shift : target.feats.shape[0] - MAX_SHIFT + shift, position : position + length]
    gain = float(np.median((x - v.raw)[v.mask[:, : x.shape[1]] > 0])) if x.shape[1] == length else 0.0
    return v.scale, shift * 12.0 / BANDS_PER_OCTAVE, gain, v.channel
