"""Whether a response estimated between two files is one a copy goes through (copies.room_fit):
a room's, or nearly a pure delay. Two similar short chirps are related almost exactly by a
response that is neither."""
from __future__ import annotations

import numpy as np

# Added in the twelfth session, against the 10k crowd's look-alike chirps (one short chirp mapped
# onto another by a response that decays 20-40 dB within 20 ms, or that sweeps), measured on the
# 27 generated chirp pairs the room check passed among the 300 nearest of 400 lone chirps, and on
# 75 reverberant copies (30 bundled and 25 generated sounds in the benchmark's small room, 20
# bundled sounds in a drier one: RT60 0.2 s, its tail 8 dB lower):
ROOM_TAIL = 0.12  # share of the response's energy from 20 ms after its peak: the copies' 0.18-0.51, the chirps' 0-0.57 (half under 0.17)
ROOM_TAIL_AFTER = 0.02  # seconds after the response's peak
ROOM_BROADBAND = 0.55  # a moment's bandwidth over the whole response's: 0.67-0.80 for the copies
# (a diffuse tail is noise, whose every frame spans the band: ~0.7 for Gaussian noise); a
# dispersive response that turns one chirp into another sweeps, one frequency at a time (0.11-0.6)
ROOM_STFT = (128, 32)  # frame and hop of that measure, in samples at 11.025 kHz (11.6 ms, 2.9 ms)
ROOM_DIRECT = 0.7  # ... or this share of its energy within ROOM_DIRECT_SECONDS of its peak: nearly a pure
# delay, a resampler's or an equaliser's short filter (a padded, resampled bundled copy: 0.95; the
# chirps' at most 0.54, the reverberant copies' at most 0.12)
ROOM_DIRECT_SECONDS = 0.0005


def plausible_response(response: np.ndarray, rate: int) -> bool:
    """Whether a response is what a copy goes through: nearly a pure delay (ROOM_DIRECT of its
    energy at its peak: a resampler, an equaliser), or a room's, which holds a reverberant tail
    (ROOM_TAIL of its energy from ROOM_TAIL_AFTER past its peak on) and is broadband at every
    moment as a diffuse tail is (ROOM_BROADBAND). Two similar short chirps are related, almost
    exactly, by a response that is neither (a short coloured filter, or a sweep), and are still
    two sounds. `rate`: the response's sample rate (copies.RATE)."""
    energy = np.square(response.astype(np.float64))
    total = float(energy.sum())
    if total <= 0:
        return False
    peak = int(np.argmax(energy))
    near = int(ROOM_DIRECT_SECONDS * rate)
    if float(energy[max(0, peak - near) : peak + near + 1].sum()) / total >= ROOM_DIRECT:
        return True
    if float(energy[peak + int(ROOM_TAIL_AFTER * rate):].sum()) / total < ROOM_TAIL:
        return False
    frame, hop = ROOM_STFT
    if response.size < frame:
        return False
    starts = np.arange(0, response.size - frame + 1, hop)
    frames = response[starts[:, None] + np.arange(frame)[None, :]] * np.hanning(frame)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, bins)

    def bandwidth(p: np.ndarray) -> np.ndarray:  # exp of the entropy: the bins a spectrum spans
        p = p / (p.sum(axis=-1, keepdims=True) + 1e-30)
        return np.exp(-np.sum(p * np.log(p + 1e-30), axis=-1))

    weights = power.sum(axis=1) / (power.sum() + 1e-30)
    moment = float(np.sum(weights * bandwidth(power)))
    return moment / float(bandwidth(power.sum(axis=0))) >= ROOM_BROADBAND


__all__ = ["plausible_response"]
