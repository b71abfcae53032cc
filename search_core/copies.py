"""Is one sound file a copy of another? The precise pair scores of `dupes`.

- **waveform**: the normalised cross-correlation of the two waveforms at 11.025 kHz over the part
  where they overlap at the best lag, rescaled against what two unrelated sounds of these spectra
  reach by chance. A re-encoded, resampled, gain-changed, trimmed, padded or lightly noised copy
  scores 0.9-1.0; two takes of the same kind of sound (two footsteps, two explosions) 0.3-0.7,
  because their waveforms do not line up sample by sample even when their spectra look alike.
- **warped**: the warp-tolerant verifier of `scan` (warped.py), the shorter file as the template
  and the longer as the target, which finds a copy played faster or slower, pitched, or in a room.
  It cannot tell two sounds of one shape apart (two realisations of a 4.6 kHz noise burst reach
  0.7, generated chirps 0.8-0.94), so its score is never a pair's score: it only says where to look.
- **waveform at the estimated speed**: where the warped check finds the copy shifted in pitch, a
  tape-speed change is tried: the template's waveform resampled at speeds around the estimate
  (within SPEED_SPAN, to 0.00005) and correlated again. A tape copy at 0.95 or 1.05 scores 0.96-1.0
  there at its exact speed, and another sound does not line up at any speed.
- **fine spectrum at the estimated pitch** (fine_spectrum.py): where the speed does not explain
  it, a pitch shift at the same tempo: the spectrum's fine detail, read at the pitch ratio, and
  the level over time, which such a copy keeps.
- **through a room**: a reverberant copy is the original convolved with the room's response, which
  leaves its waveform correlation at 0.1-0.2 (the benchmark's small room puts ~3 % of its energy in
  the direct path). So the response is estimated (Wiener deconvolution of one file by the other),
  cut to its first ROOM_SECONDS from where it begins, and the original through that cut response is
  correlated with the copy. A room's response begins with the direct sound at the two files' common
  start (give or take what one file holds before the other: under 10 % of its energy), passes
  the whole of the original's spectrum and decays; responses that explain one
  sound by another in any other way (a narrow band-pass that keeps one chirp's part of another, a
  dispersive delay that maps one chirp onto another, one that starts elsewhere) are not rooms.
  A room's response also holds a reverberant tail that is broadband at every moment (diffuse
  noise), unless it is nearly a pure delay (a resampled or equalised copy: plausible_response).
  Two similar short chirps are related almost exactly by a short coloured filter or by a sweep,
  which are neither; narrow-band sounds (a tone, a short sweep) through a room remain the limit:
  the response is seen only in their band, where a room and another tone look alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import warped
from .audio import AudioError, load_audio
from .fine_spectrum import fine_pitch
from .room_response import plausible_response

RATE = 11025  # of the waveforms compared
AUDIO_RATE = warped.RATE  # files are decoded once, at the warped verifier's rate; waveforms are decimated
MAX_SECONDS = 60.0  # of a file's audible part compared (longer files: their first minute)
SILENCE_DB = 50.0  # samples this far under the file's peak, at either end, are trimmed as silence
MIN_PEAK = 1e-3  # a file quieter than this (-60 dBFS) is silence: never anybody's duplicate
ENERGY_COVER = 0.9  # the overlap must hold this share of one file's energy ...
TIME_COVER = 0.5  # ... and this share of each file's audible duration
# Chance: two unrelated sounds' waveforms correlate, at one lag, with a standard deviation of about
# 1 / sqrt(n), n = 2 df T / sum(Px Py) their degrees of freedom (T seconds, Px and Py their normalised
# power spectra in bins of df Hz): n is the sample count for white noise and tiny for two beeps of
# one pitch. A pair's correlation r is rescaled as (r - c) / (1 - c), c = WAVE_CHANCE / sqrt(n).
# WAVE_CHANCE: the best of thousands of lags lies 4-5 sd out. On the tuning crowd (the seed-7 copies
# among 1,500 generated sounds of seed 12) 2-12 all kept every true pair over 0.8; false pairs there
# were 6 at 2, 4 at 6, 2 at 10 (the rest: exponential chirps whose sweeps overlap, see the README).
WAVE_CHANCE = 6.0
MAX_WAVE_CHANCE = 0.8
SPECTRUM_BINS = 512  # Welch segments of this many samples (21.5 Hz bins at RATE)
COVER = TIME_COVER  # the warped check's: the shorter file's audible length over the longer one's
WARP_BELOW = 0.95  # the warped checks run on pairs whose waveform score is under this
PAIR_SCALES = (0.95, 1.0, 1.05)  # the warped check's time scales (a tape copy at 0.95-1.05; half the cost of all five)
SPEED_CHECK = 0.3  # a warped score from which the speed search runs (when the pitch moved)
SPEED_SPAN = 0.03  # around the speed the pitch shift implies (its bands are 1/24 octave: +-0.015)
SPEED_SECONDS = 1.0  # of each file compared at other speeds (the longer, the narrower the peak over speed)
# The room check (room_score). Chosen on one-off pairs of seed 12 (72 reverberant and 72 pitched
# copies of every second bundled clip of 0.5 s or more, 551 same-category pairs of bundled clips,
# 16,730 pairs of 250 generated sounds), before the benchmark's seeds 7 and 8 were run with it:
ROOM_SECONDS = 0.15  # of the response kept: a small room (RT60 0.35 s) has ~99 % of its energy there, RT60 0.6 s ~90 %
ROOM_RIDGE = 1e-3  # the deconvolution's regularisation, of the original's mean power per bin
ROOM_PASS = (0.5, 4.0)  # the original's energy through the response, over what a flat one would pass
ROOM_DECAY_DB = 6.0  # the response's first third over its last third, at least
ROOM_FRAME = 0.005  # seconds: the response's energy envelope, where it begins
# A room never shortens a sound: the wet file's audible part is at least this share of the dry
# one's (dupes' room check; scan's compares a window of a recording). On the tuning set (seed 7's
# copies among 3,000 generated sounds of seed 12): true room pairs 0.944 at least (a trimmed end,
# or a speed copy that the near-delay branch finds); of the 78 false pairs >= 0.8, 17 drop under
# the threshold with it (the others pass another check, or the room check the other way round).
ROOM_SHORTER = 0.92


@dataclass
class Sound:
    """A file's audible part as the precise stage compares it."""

    wave: np.ndarray  # at RATE
    spectrum: np.ndarray  # the wave's power spectrum (SPECTRUM_BINS // 2 + 1 bins), summing to 1
    audio: np.ndarray  # at AUDIO_RATE, half precision (the warped features are in dB): for the warped check
    key: int = -1  # a caller's name for it (the finder's index, which keys its cache of pair features)

    def pair(self) -> PairSound | None:
        """Its warped features (made anew: ~0.8 MB a second of sound, so callers cache a few)."""
        return pair_sound(self.audio)


def make_sound(samples: np.ndarray) -> Sound | None:
    """Mono audio at AUDIO_RATE, compared as a Sound; None when it is silent."""
    from scipy.signal import resample_poly

    audio = make_wave(samples, AUDIO_RATE)
    if audio is None:
        return None
    wave = resample_poly(audio, RATE, AUDIO_RATE).astype(np.float32)
    spectrum = power_spectrum(wave)
    return None if spectrum is None else Sound(wave, spectrum, audio.astype(np.float16))


def power_spectrum(wave: np.ndarray) -> np.ndarray | None:
    """A wave's power spectrum at RATE (SPECTRUM_BINS // 2 + 1 Welch bins), summing to 1; None
    when it holds no power: what wave_chance weighs two waves' overlap by."""
    from scipy.signal import welch

    _, power = welch(np.pad(wave, (0, max(0, SPECTRUM_BINS - wave.size))), nperseg=SPECTRUM_BINS)
    total = float(power.sum())
    if total <= 0 or not np.isfinite(total):
        return None
    return (power / total).astype(np.float64)


def load_sound(path: str | Path) -> Sound | None:
    try:
        return make_sound(load_audio(Path(path), AUDIO_RATE).samples)
    except (AudioError, OSError):
        return None


def wave_chance(overlap: float, px: np.ndarray, py: np.ndarray) -> float:
    """What two unrelated waveforms of power spectra px and py, overlapping `overlap` seconds,
    reach by chance (see WAVE_CHANCE)."""
    shared = float(np.dot(px, py))
    freedom = 2.0 * (RATE / SPECTRUM_BINS) * overlap / max(shared, 1e-12)
    return min(MAX_WAVE_CHANCE, WAVE_CHANCE / float(np.sqrt(max(freedom, 1.0))))


def sound_score(a: Sound, b: Sound, warp: bool = True,
                pair_of: Callable[[Sound], PairSound | None] = Sound.pair) -> float:
    """The pair's score: its chance-rescaled waveform correlation; where `warp` asks and that is
    under WARP_BELOW, also the room check's, the waveform score at the speed the warped check
    implies and, failing that, the fine-spectrum score at its pitch (fine_spectrum.py), if higher.
    (The warped score itself is not a pair's score: two synthetic sounds of one shape reach it.)
    `pair_of` gives a sound's warped features (a caller's cache)."""
    score = wave_score(a.wave, b.wave, a.spectrum, b.spectrum)
    if warp and score < WARP_BELOW:
        score = max(score, room_score(a, b))
    if warp and score < WARP_BELOW:
        pa, pb = pair_of(a), pair_of(b)
        if pa is not None and pb is not None:
            found = warp_match(pa, pb)
            if found.score >= SPEED_CHECK and found.pitch_semitones != 0.0:
                short, long_ = (a, b) if found.template_is_a else (b, a)
                # both checks start at the shorter file's start within the longer: where that lies
                # before the longer one's start, they skip what the shorter holds before it
                at, skip = max(0.0, found.offset), max(0.0, -found.offset)
                score = max(score, speed_score(short, long_, 2.0 ** (found.pitch_semitones / 12.0), at, skip))
                if score < WARP_BELOW:  # not a tape: the pitch moved at the same tempo?
                    pitched = fine_pitch(short.audio[int(skip * AUDIO_RATE):], long_.audio, found.pitch_semitones, at)
                    score = max(score, pitched.score)
    return score


def wave_score(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> float:
    """pair_score rescaled against chance, for waves of power spectra px and py."""
    return rescaled(pair_score(x, y), min(x.size, y.size) / RATE, px, py)


def rescaled(r: float, overlap: float, px: np.ndarray, py: np.ndarray) -> float:
    """A waveform correlation r rescaled against its chance level: (r - c) / (1 - c), floored at 0."""
    c = wave_chance(overlap, px, py)
    return max(0.0, (r - c) / (1.0 - c))


def at_speed(wave: np.ndarray, speed: float) -> np.ndarray:
    """The wave played `speed` times as fast (a tape: shorter and higher when speed > 1)."""
    import soxr  # installed with librosa

    return soxr.resample(wave, RATE, RATE / speed, quality="HQ").astype(np.float32)


def speed_score(template: Sound, other: Sound, speed: float, offset: float = 0.0, skip: float = 0.0) -> float:
    """The best waveform score of `template` played at a speed near `speed` against `other`, over
    SPEED_SECONDS from their starts (`other`'s from `offset` seconds in, less a margin). The
    correlation's peak over speed is narrow (about 1 / (seconds x bandwidth): 0.94 scores 0.98
    where 0.93 and 0.95 score 0.4), so the speed is found coarse to fine: by 0.001 on waves
    decimated 4x, then by 0.0002 and by 0.00005 at RATE. The chance level is that of two sounds
    of `other`'s spectrum (the template at the right speed has it). `skip`: seconds of the
    template's start left out (what it holds before `other` begins)."""
    from scipy.signal import resample_poly

    first = int(skip * RATE)
    x = template.wave[first : first + int(SPEED_SECONDS * RATE * (speed + SPEED_SPAN)) + 1]
    start = int(max(0.0, offset - 0.05) * RATE)  # the warped position is good to a frame or two
    y = other.wave[start : start + int((SPEED_SECONDS + 0.1) * RATE)]
    if min(x.size, y.size) < 0.1 * RATE:
        return 0.0
    xs, ys = resample_poly(x, 1, 4).astype(np.float32), resample_poly(y, 1, 4).astype(np.float32)

    def best(xw: np.ndarray, yw: np.ndarray, speeds: np.ndarray) -> tuple[float, float]:
        scores = [pair_score(at_speed(xw, s), yw) for s in speeds]
        k = int(np.argmax(scores))
        return float(speeds[k]), float(scores[k])

    s, _ = best(xs, ys, speed + np.arange(-SPEED_SPAN, SPEED_SPAN + 1e-9, 0.001))
    s, _ = best(x, y, s + np.arange(-0.001, 0.001 + 1e-9, 0.0002))
    s, r = best(x, y, s + np.arange(-0.0002, 0.0002 + 1e-9, 0.00005))
    return rescaled(r, min(x.size, y.size) / RATE, other.spectrum, other.spectrum)


def room_score(a: Sound, b: Sound) -> float:
    """The better of `b` as `a` in a room and `a` as `b` in a room (through_room), 0 when neither
    response looks like a room's."""
    return max(through_room(a.wave, b.wave), through_room(b.wave, a.wave))


def through_room(dry: np.ndarray, wet: np.ndarray) -> float:
    """How well `wet` is `dry` through a short room response (room_fit's score); 0 when `wet` is
    the shorter by more than a room allows (ROOM_SHORTER)."""
    return 0.0 if wet.size < ROOM_SHORTER * dry.size else room_fit(dry, wet)[0]


def room_fit(dry: np.ndarray, wet: np.ndarray, ridge: float = ROOM_RIDGE,
             passband: tuple[float, float] = ROOM_PASS) -> tuple[float, float]:
    """How well `wet` is `dry` through a short room response, rescaled against chance, and where
    in `wet` the response begins (seconds; negative: `dry` holds more before the sound). The
    response h is estimated over the whole of both (Wiener: H = W conj(D) / (|D|^2 + ridge)),
    kept for ROOM_SECONDS from where its energy begins, and r is the correlation of `wet` with
    `dry` through it. A kept response of L seconds can explain about L / T of the energy of an
    unrelated sound T seconds long, so r is rescaled as (r - c) / (1 - c), c = sqrt(L / T). The
    response must look like a room's (see the module's docstring), else the score is 0. `ridge`
    and `passband`: the regularisation and ROOM_PASS, which noise under the copy asks to widen."""
    from scipy import fft

    keep = int(ROOM_SECONDS * RATE)
    if min(dry.size, wet.size) < 2 * keep:
        return 0.0, 0.0
    size = fft.next_fast_len(dry.size + wet.size + keep, real=True)
    d = fft.rfft(dry.astype(np.float64), size)
    w = fft.rfft(wet.astype(np.float64), size)
    power = np.abs(d) ** 2
    h = fft.irfft(w * np.conj(d) / (power + ridge * power.mean()), size)
    lags = np.concatenate([h[-dry.size:], h[: wet.size]])  # lags -dry.size .. wet.size - 1
    frame = int(ROOM_FRAME * RATE)
    env = np.square(lags[: lags.size // frame * frame]).reshape(-1, frame).sum(axis=1)
    begin = max(0, (int(np.flatnonzero(env >= 0.1 * env.max())[0]) - 1) * frame)
    lag0 = begin - dry.size  # > 0: the wet file holds more before the sound (the dry one was trimmed)
    # as pair_score's cover: what either file holds before the other's start is under 10 % of its energy
    before = np.sum(np.square(dry[: max(0, -lag0)], dtype=np.float64)) / np.sum(np.square(dry, dtype=np.float64))
    ahead = np.sum(np.square(wet[: max(0, lag0)], dtype=np.float64)) / np.sum(np.square(wet, dtype=np.float64))
    if max(before, ahead) > 1.0 - ENERGY_COVER:
        return 0.0, lag0 / RATE
    kept = lags[begin : begin + keep]
    third = kept.size // 3
    if 10 * np.log10(np.sum(kept[:third] ** 2) / (np.sum(kept[-third:] ** 2) + 1e-30)) < ROOM_DECAY_DB:
        return 0.0, lag0 / RATE
    if not plausible_response(kept, RATE):
        return 0.0, lag0 / RATE
    room = np.zeros(size)
    room[np.arange(lag0, lag0 + kept.size) % size] = kept
    through = fft.irfft(fft.rfft(room, size) * d, size)
    passed = float(np.sum(through**2) / (np.sum(kept**2) * np.sum(dry.astype(np.float64) ** 2) + 1e-30))
    if not passband[0] <= passed <= passband[1]:
        return 0.0, lag0 / RATE
    r = float(np.dot(wet, through[: wet.size]) / (np.linalg.norm(wet) * np.linalg.norm(through) + 1e-30))
    c = float(np.sqrt(ROOM_SECONDS * RATE / max(dry.size, wet.size)))
    return max(0.0, (r - c) / (1.0 - c)), lag0 / RATE


def make_wave(samples: np.ndarray, rate: int = RATE) -> np.ndarray | None:
    """The audible part of mono audio at `rate`; None when it is silent."""
    found = audible_wave(samples, rate)
    return None if found is None else found[0]


def audible_wave(samples: np.ndarray, rate: int = RATE, seconds: float = MAX_SECONDS) -> tuple[np.ndarray, int] | None:
    """make_wave's audible part (its first `seconds`), and the sample of `samples` where it
    begins; None when silent."""
    y = np.asarray(samples, dtype=np.float64)
    if y.size == 0 or not np.all(np.isfinite(y)):
        return None
    y = y - y.mean()
    peak = float(np.max(np.abs(y)))
    if peak < MIN_PEAK:
        return None
    loud = np.flatnonzero(np.abs(y) >= peak * 10 ** (-SILENCE_DB / 20))
    return y[loud[0] : min(loud[-1] + 1, loud[0] + int(seconds * rate))].astype(np.float32), int(loud[0])


def running_energy(y: np.ndarray) -> np.ndarray:
    """[0, y0², y0² + y1², ...]: the energy of any window of y as a difference of two entries."""
    return np.concatenate([[0.0], np.cumsum(np.square(y, dtype=np.float64))])


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
    cx, cy = running_energy(xs), running_energy(ys)
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


@dataclass
class PairSound:
    """A file's audible part, ready to be either side of a pair."""

    template: warped.WarpTemplate
    target: warped.Target


def pair_sound(samples: np.ndarray) -> PairSound | None:
    """Mono audio at warped.RATE, its silence already trimmed; None when silent."""
    y = np.asarray(samples, dtype=np.float32)
    if y.size == 0:
        return None
    tpl = warped.make_warp_template(y, PAIR_SCALES, ())
    if tpl is None:
        return None
    return PairSound(tpl, warped.Target.of(y))


@dataclass
class WarpMatch:
    score: float
    pitch_semitones: float  # of the longer file's occurrence against the shorter one
    template_is_a: bool  # which file was the template (the shorter)
    offset: float = 0.0  # seconds into the longer file where the shorter one's start lies; negative
    # when the shorter holds that much before the longer one's start (a padded copy whose leading
    # near-silence survived the trim, against a copy without it)


def warp_match(a: PairSound, b: PairSound) -> WarpMatch:
    """The best warped score of the shorter file anywhere in the longer one (0 when the shorter
    covers less than COVER of the longer), and the pitch shift it was found at."""
    a_short = a.template.length <= b.template.length
    short, long_ = (a, b) if a_short else (b, a)
    if short.template.length < COVER * long_.template.length:
        return WarpMatch(0.0, 0.0, a_short)
    fits = [v.mask.shape[1] for v in short.template.variants if v.mask.shape[1] <= long_.target.frames]
    if not fits:
        return WarpMatch(0.0, 0.0, a_short)
    profile, which = warped.score_profile(short.template, long_.target, 0, long_.target.frames - min(fits))
    at = int(np.argmax(profile))
    scale, pitch, _, _ = warped.alignment(short.template, long_.target, at, int(which[at]))
    offset = at / warped.FRAMES_PER_SECOND - short.template.lead * scale  # < 0: the shorter starts earlier
    return WarpMatch(float(max(0.0, profile[at])), pitch, a_short, offset)
