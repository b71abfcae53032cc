"""Verification strategies behind one interface, so scan and find use either and the benchmarks
measure both on the same recordings (as Panako keeps its strategies side by side).

- `warped-room` (default): `warped-bg`, and each of its alignments also tried as the library sound
  through a small room (room_check.py); the better score stands; threshold 0.3. On the live
  benchmark it costs a stream about 7 % more CPU than `warped-bg` (README, "Live monitoring").
- `warped-bg`: `warped`, each score taken against the template's chance level on a fixed
  background of music and voices (background.py); threshold 0.3.
- `warped` (warped.py): log-frequency detail + envelope over the template's salient cells, every
  time scale 0.9-1.1 and pitch shift +-2.5 semitones; says how the sound was changed; raw scores,
  threshold 0.45.
- `logmel` (matching.py): the band-centred log-mel correlation at the original speed and pitch.

All work at the same frame rate (hop 256 at 22.05 kHz), so a caller's frame ranges hold for either.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import matching, room_check, warped
from .matching import peaks

RATE = matching.RATE
FRAMES_PER_SECOND = matching.FRAMES_PER_SECOND
assert warped.RATE == RATE and warped.HOP == matching.HOP


@dataclass
class Hit:
    """One alignment of a template in a target: where its (trimmed) first frame lies, how well it
    matches, and the change it was found under (1.0 / 0 / None where the strategy cannot tell)."""

    position: int  # frames into the target
    score: float
    scale: float = 1.0  # the occurrence's length over the library sound's
    pitch_semitones: float = 0.0
    gain_db: float | None = None
    channel: str = ""  # the template variant that matched best (warped.CHANNELS), "" for the full band

    @property
    def speed(self) -> float:
        return 1.0 / self.scale

    def change(self) -> dict:
        d = {"speed": round(self.speed, 3), "pitch_semitones": round(self.pitch_semitones, 2)}
        if self.gain_db is not None:
            d["gain_db"] = round(self.gain_db, 1)
        if self.channel:
            d["channel"] = self.channel
        return d


class LogmelVerifier:
    name = "logmel"
    threshold = 0.85  # its default threshold, when it was the verifier

    def __init__(self, cache_size: int = 512):
        self.cache = matching.TemplateCache(cache_size)

    def features(self, samples: np.ndarray) -> np.ndarray:
        return matching.logmel(samples)

    def frames(self, feats: np.ndarray) -> int:
        return feats.shape[1]

    def template(self, path: str, start: float = 0.0, end: float | None = None):
        return self.cache.get(path, start, end)

    def make_template(self, samples: np.ndarray):
        return matching.make_template(samples)

    def hits(self, tpl, feats: np.ndarray, lo: int, hi: int, threshold: float) -> list[Hit]:
        profile = matching.match_profile(tpl, feats[:, lo : hi + tpl.frames])
        return [Hit(lo + p, s) for p, s in peaks(profile, threshold, max(tpl.frames, 4))]


class WarpedVerifier:
    """`background`: every score is taken against the template's own chance level, its best score
    on background.py's music and voices (cohort normalisation; `warped-bg`, on which the default, `warped-room`, is built)."""

    name = "warped"
    threshold = 0.45  # chosen on the wild benchmark's tuning hour (scan.DEFAULT_THRESHOLD says how)

    def __init__(self, cache_size: int = 512, background: bool = False):
        self.cache = matching.TemplateCache(cache_size, self.make_template)
        self.background = background
        self.levels = None  # a levels.LevelFile: levels kept between processes (Scanner sets it)

    def level(self, tpl: warped.WarpTemplate) -> float:
        """The template's chance level on the background: computed once (~0.06 s), kept with the
        template (which the cache keeps between scans) and in `levels` (between processes)."""
        if tpl.background is None:
            from . import background
            from .levels import template_key

            key = template_key(tpl) if self.levels is not None else None
            level = self.levels.get(key) if key else None
            if level is None:
                level = background.level(tpl)
                if key:
                    self.levels.put(key, level)
            tpl.background = level
        return tpl.background

    def features(self, samples: np.ndarray) -> warped.Target:
        return warped.Target.of(samples)

    def frames(self, feats: warped.Target) -> int:
        return feats.frames

    def template(self, path: str, start: float = 0.0, end: float | None = None):
        return self.cache.get(path, start, end)

    def make_template(self, samples: np.ndarray):
        return warped.make_warp_template(samples)

    def hits(self, tpl: warped.WarpTemplate, feats: warped.Target, lo: int, hi: int, threshold: float) -> list[Hit]:
        profile, which = warped.score_profile(tpl, feats, lo, hi)
        if self.background:
            profile = warped.normalised(profile, self.level(tpl))
        out = []
        for p, s in peaks(profile, threshold, max(tpl.frames, 4)):
            scale, pitch, gain, channel = warped.alignment(tpl, feats, lo + p, int(which[p]))
            out.append(Hit(lo + p, s, scale, pitch, gain, channel))
        return out


class BackgroundWarpedVerifier(WarpedVerifier):
    """`warped` scored against each template's background level: the default. On the wild
    benchmark's tuning hour over game music, with onset windows and siblings (scan.py), it found
    0.896 of the library sounds with no false detection at 0.3, where `warped` found 0.865 with
    one at its 0.45 (README, "In the wild")."""

    name = "warped-bg"
    threshold = 0.3  # the default verifier's: scan.DEFAULT_THRESHOLD

    def __init__(self, cache_size: int = 512):
        super().__init__(cache_size, background=True)


@dataclass
class SampledTarget(warped.Target):
    """A recording's warped features and its samples (at RATE), for checks on the waveform."""

    samples: np.ndarray | None = None

    @classmethod
    def of(cls, samples: np.ndarray) -> "SampledTarget":
        t = warped.Target.of(samples)
        return cls(t.feats, t.detail, samples)


class RoomVerifier(BackgroundWarpedVerifier):
    """`warped-bg`, and each of its alignments (at the floor it is asked for) also scored as the
    library sound through a small room (room_check.py): the better of the two is the score, and a
    hit that the room explains says so (`"channel": "room"` in its change, at speed 1 and pitch 0:
    the waveform lined up as it is). On the wild benchmark's
    tuning hour this lifted recall from 0.896 to 0.910 with no false detection (README, "In the
    wild"); the threshold stays `warped-bg`'s 0.3."""

    name = "warped-room"
    threshold = 0.3

    def features(self, samples: np.ndarray) -> SampledTarget:
        return SampledTarget.of(samples)

    def make_template(self, samples: np.ndarray):
        tpl = warped.make_warp_template(samples)
        if tpl is not None:
            tpl.wave = room_check.dry_of(samples, RATE)
        return tpl

    def hits(self, tpl: warped.WarpTemplate, feats: warped.Target, lo: int, hi: int, threshold: float) -> list[Hit]:
        dry, samples = getattr(tpl, "wave", None), getattr(feats, "samples", None)
        if dry is None or samples is None:
            return super().hits(tpl, feats, lo, hi, threshold)
        out = []
        for hit in super().hits(tpl, feats, lo, hi, min(threshold, room_check.FLOOR)):
            onset = hit.position / FRAMES_PER_SECOND - tpl.lead * hit.scale
            room = room_check.room_score(dry, samples, RATE, onset)
            if room > hit.score:
                hit = replace(hit, score=room, scale=1.0, pitch_semitones=0.0, channel="room")
            if hit.score >= threshold:
                out.append(hit)
        return out


VERIFIERS: dict[str, Any] = {"warped-room": RoomVerifier, "warped-bg": BackgroundWarpedVerifier, "warped": WarpedVerifier,
                             "logmel": LogmelVerifier}


def make_verifier(name: str):
    try:
        return VERIFIERS[name]()
    except KeyError:
        raise ValueError(f"unknown verifier {name!r}: choose one of {', '.join(VERIFIERS)}") from None
