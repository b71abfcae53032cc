"""The room check of scan and find: an alignment of a library sound tried as that sound through a
small room (its waveform through a short estimated response, copies.room_fit), over whatever else
the recording holds there.

Why: reverb smears the spectro-temporal detail that the warped score rests on, so a reverberant
copy over music scores 0.25-0.3 there (just under the threshold), where another sound of the same
kind scores as much. Through a room the copy's waveform is still the original's, which another
take's is not. On the wild benchmark's tuning hour (seeds 0-11; replaying its captured alignments)
it lifted 6 of the 46 misses over the threshold (5 reverberant, 1 overlapped) and added no false
detection: recall 0.896 -> 0.910. The noise under a copy (music 0-15 dB under it) needs a stronger
regularisation than two files do (`dupes`): at copies' 1e-3 the response is mostly noise amplified
in the bins where the original is weak, so two ridges are tried, RIDGES.

The check runs only where the warped verifier already found the alignment at the cohort floor
(scan.COHORT_FLOOR, 0.2): a response of 0.15 s explains a sustained tonal sound through game music
at 0.3 now and then (3 times in the tuning hour, at alignments the warped verifier scored 0.10-0.12),
and never did at an alignment the warped verifier had proposed. The response must also begin
where the alignment says the sound begins (within LAG_TOLERANCE), so the check confirms that
alignment and never moves it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import copies

RATE = copies.RATE  # the waveforms compared
FLOOR = 0.2  # the warped score from which an alignment is tried (scan.COHORT_FLOOR; find asks at its threshold)
RIDGES = (0.1, 0.3)  # of the original's mean power per bin (copies.ROOM_RIDGE is 1e-3 for two clean files)
PASSBAND = (0.5, 12.0)  # copies.ROOM_PASS widened: the regularised response passes the original's strong bins more
MARGIN = 0.1  # seconds of the recording taken before where the alignment puts the sound ...
TAIL = 0.4  # ... and after its end (the room's tail)
LAG_TOLERANCE = 0.1  # seconds between where the response begins and where the alignment put the sound
MAX_SECONDS = 6.0  # longer library sounds are not tried (the cost grows with the length; long sounds
# are ambiences, whose warped score is not the one that reverb breaks)


@dataclass
class Dry:
    """A library sound's audible waveform at RATE, and where it begins in the sound (seconds)."""

    wave: np.ndarray
    lead: float


def dry_of(samples: np.ndarray, rate: int) -> Dry | None:
    """The library sound (mono, at `rate`) as the room check compares it; None when silent or
    longer than MAX_SECONDS."""
    from scipy.signal import resample_poly

    y = np.asarray(samples, dtype=np.float64)
    if y.size == 0 or y.size > MAX_SECONDS * rate * 1.5:
        return None
    if rate != RATE:
        y = resample_poly(y, RATE, rate)
    found = copies.audible_wave(y, RATE)
    if found is None or found[0].size > MAX_SECONDS * RATE:
        return None
    wave, start = found
    return Dry(wave, start / RATE)


def room_score(dry: Dry, samples: np.ndarray, rate: int, onset: float) -> float:
    """How well the recording (`samples` at `rate`) holds `dry` through a room where its sound
    begins at `onset` seconds: copies.room_fit over the recording from MARGIN before the sound to
    TAIL after it, the best over RIDGES whose response begins within LAG_TOLERANCE of there; 0
    when none does."""
    from scipy.signal import resample_poly

    begin = onset + dry.lead - MARGIN
    a = max(0, int(round(begin * rate)))
    b = min(samples.size, int(round((onset + dry.lead + dry.wave.size / RATE + TAIL) * rate)))
    if b - a < dry.wave.size * rate // RATE // 2:
        return 0.0
    wet = np.asarray(samples[a:b], dtype=np.float64)
    if float(np.max(np.abs(wet))) < copies.MIN_PEAK:  # silence holds no copy (and no response to estimate)
        return 0.0
    if rate != RATE:
        wet = resample_poly(wet, RATE, rate)
    expected = onset + dry.lead - a / rate  # where the sound should begin in `wet`
    best = 0.0
    for ridge in RIDGES:
        score, lag = copies.room_fit(dry.wave, wet.astype(np.float32), ridge, PASSBAND)
        if abs(lag - expected) <= LAG_TOLERANCE:
            best = max(best, score)
    return best
