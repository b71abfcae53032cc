"""A fixed background of audio that holds no library sound, for scoring a template against chance
(cohort normalisation, as speaker verification scores a voice against others).

Some templates fit almost anything of a kind: a sustained chime lines up with the partials of any
music at some pitch shift and time scale, a short voiced grunt with any voice. On the wild
benchmark's tuning hour over its procedural bed (benchmarks/wild.py) two such templates made 104 of
the 107 false detections scoring 0.35 or more. A template's best score on this background says how
far it reaches by chance; the `warped-bg` verifier scores a recording against that level
(warped.normalised); the default verifier, `warped-room`, is built on it (README, "What a score
means").

The background is synthesised here (seeded, the same on every machine, nothing to download or
license) and is not the benchmark's music or its distractors: ~25 s of music (chords, a plucked
melody, bass, drums) and ~20 s of voice-like babble (a gliding glottal pulse through vowel
formants, in syllables), at warped.RATE.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import warped

RATE = warped.RATE
SEED = 20261130
MUSIC_SECONDS = 25.0
VOICE_SECONDS = 20.0
# (F1, F2, F3) of eight vowels, Hz (Peterson & Barney's averages, rounded)
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410),
          (660, 1720, 2410), (440, 1020, 2240), (390, 1990, 2550))


def _tone(freq: float, seconds: float, partials: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    y = sum(np.sin(2 * np.pi * freq * h * t + rng.uniform(0, 2 * np.pi)) / h ** rng.uniform(0.8, 1.6)
            for h in range(1, partials + 1) if freq * h < RATE / 2)
    attack = np.minimum(1.0, t / 0.01)
    return (y * attack * np.exp(-t * decay)).astype(np.float32)


def _drum(kind: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * RATE)) / RATE
    if kind == "kick":
        return (np.sin(2 * np.pi * 55 * t * (1 + 3 * np.exp(-t * 40))) * np.exp(-t * 14)).astype(np.float32)
    noise = rng.normal(size=t.size)
    if kind == "snare":
        return ((0.7 * noise + 0.5 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 22)).astype(np.float32)
    return (np.diff(noise, prepend=0.0) * np.exp(-t * 70) * 0.4).astype(np.float32)  # hat: bright, short


def music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Bars of a chord (a sustained pad), a plucked melody on its scale, a bass note and drums."""
    n = int(seconds * RATE)
    y = np.zeros(n + RATE * 4, np.float32)
    beat = 60.0 / rng.uniform(90, 150)
    scale = np.array([0, 2, 3, 5, 7, 8, 10, 12])
    at = 0.0
    while at < seconds:
        root = 98.0 * 2 ** (rng.integers(0, 12) / 12)
        bar = int(at * RATE)
        pad = sum(_tone(root * 2 ** (s / 12) * 2, 4 * beat, 8, 0.4, rng) for s in (0, 3, 7))
        y[bar : bar + pad.size] += 0.15 * pad
        bass = _tone(root / 2, 2 * beat, 6, 1.5, rng)
        y[bar : bar + bass.size] += 0.3 * bass
        for k in range(8):  # eighth notes: a plucked note on most, drums on the beats
            at_k = bar + int(k * beat / 2 * RATE)
            if rng.random() < 0.7:
                note = _tone(root * 4 * 2 ** (rng.choice(scale) / 12), beat, 10, 6.0, rng)
                y[at_k : at_k + note.size] += 0.2 * note
            hit = _drum("kick" if k % 4 == 0 else "snare" if k % 4 == 2 else "hat", rng)
            y[at_k : at_k + hit.size] += 0.5 * hit
        at += 4 * beat
    return y[:n]


def babble(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Voice-like syllables: a glottal pulse train whose pitch glides, through three formants."""
    from scipy.signal import lfilter

    n = int(seconds * RATE)
    y = np.zeros(n, np.float32)
    at = 0
    while at < n:
        length = int(rng.uniform(0.12, 0.45) * RATE)
        f0 = np.linspace(*rng.uniform(90, 320, size=2), length)
        pulses = (np.diff(np.floor(np.cumsum(f0 / RATE)), prepend=0.0) > 0).astype(np.float64)
        out = lfilter([1.0], [1.0, -0.95], pulses)  # the glottal pulse's spectral tilt
        for freq, width in zip(VOWELS[int(rng.integers(len(VOWELS)))], (80, 100, 120)):
            r, theta = np.exp(-np.pi * width / RATE), 2 * np.pi * freq / RATE
            out = lfilter([1 - r], [1.0, -2 * r * np.cos(theta), r * r], out)
        seg = out * np.sin(np.linspace(0, np.pi, length)) ** 0.5
        seg /= np.sqrt(np.mean(seg**2)) + 1e-9
        end = min(n, at + length)
        y[at:end] += seg[: end - at].astype(np.float32)
        at = end + int(rng.uniform(0.03, 0.25) * RATE)
    return y


def _unit(y: np.ndarray) -> np.ndarray:
    return (0.1 * y / (np.sqrt(np.mean(y.astype(np.float64) ** 2)) + 1e-12)).astype(np.float32)


@lru_cache(maxsize=1)
def signal() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return np.concatenate([_unit(music(MUSIC_SECONDS, rng)), _unit(babble(VOICE_SECONDS, rng))])


@lru_cache(maxsize=1)
def target() -> warped.Target:
    """The background's features, made once per process."""
    return warped.Target.of(signal())


def level(tpl: warped.WarpTemplate) -> float:
    """The template's best score anywhere on the background (0 when it reaches no higher than the
    chance level its size predicts)."""
    bg = target()
    best, _ = warped.score_profile(tpl, bg, 0, max(0, bg.frames - tpl.frames))
    return max(0.0, float(best.max()))
