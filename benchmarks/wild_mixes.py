"""Recordings of the wild: library sounds altered as real media alters them, under music, between
sounds that are NOT in the library, with the ground truth beside them.

The bundled set is split by game: the sounds of LIBRARY_GAMES form the library, the others are
distractors (another game's gunshot, explosion, scream: the same kinds of sound, other recordings).
Distractors that are the same recording as a library sound (games that ship the same file) are
left out. Each library sound is inserted under one condition:

  clean, speed 0.95 / 1.05 (tape: time and pitch together), pitch -2 / +2 semitones (same tempo),
  stretch 0.9 / 1.1 (same pitch), telephone (300-3400 Hz band), reverb (a small room), mp3 (32 kbit/s),
  overlap (the next sound starts half-way through it)

each 0-15 dB over the bed around it (active RMS against the bed's RMS), and as many distractors
between them, under random conditions too. The bed is game music (Debian `scorched3d-data`'s
loops, GPL-2+, read from the installed package) or, where that package is missing, a procedural
one (chords of harmonic tones with drums). The whole recording is written as OGG Vorbis.

    python -m benchmarks.wild_mixes OUT.ogg [--minutes 5] [--seed 0]

writes OUT.ogg and OUT.json ({"duration", "bed", "insertions": [...], "distractors": [...]}).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import SAMPLE
from .mixes import RATE, _active_rms, finish_mix, sample_clips

LIBRARY_GAMES = ("wesnoth", "supertux", "chromium", "pingus")  # 108 sounds; the other games: 99 distractors
CONDITIONS = ("clean", "speed_0.95", "speed_1.05", "pitch_-2", "pitch_+2", "stretch_0.9", "stretch_1.1",
              "telephone", "reverb", "mp3", "overlap")
MUSIC_DIR = Path("/usr/share/games/scorched3d/data/globalmods/none/data/music")


def split(folder: Path = SAMPLE) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(library, distractors) of the bundled set, by game (the file name's prefix)."""
    lib, other = [], []
    for path, label in sample_clips(folder):
        (lib if path.stem.split("_")[0] in LIBRARY_GAMES else other).append((path, label))
    return lib, other


def bed(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Unit-RMS music of `seconds`: the scorched3d loops from a random point, else a procedural one."""
    from search_core.audio import load_audio

    n = int(seconds * RATE)
    loops = sorted(MUSIC_DIR.glob("*.ogg")) if MUSIC_DIR.is_dir() else []
    if loops:
        music = np.concatenate([load_audio(p, RATE).samples for p in loops])
        start = int(rng.integers(0, len(music)))
        y = np.resize(np.roll(music, -start), n)
        name = "scorched3d music (" + ", ".join(p.name for p in loops) + ")"
    else:
        y = procedural_music(seconds, rng)
        name = "procedural music (scorched3d-data not installed)"
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32), name


def procedural_music(seconds: float, rng: np.random.Generator, bpm: float = 110.0) -> np.ndarray:
    n = int(seconds * RATE)
    y = np.zeros(n, np.float32)
    beat = 60.0 / bpm
    t = np.arange(int(4 * beat * RATE)) / RATE
    for bar_start in np.arange(0, seconds, 4 * beat):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        chord = sum(np.sin(2 * np.pi * root * r * h * t) / h * np.exp(-t / 3)
                    for r in (1, 1.26, 1.5) for h in (1, 2, 3))
        a = int(bar_start * RATE)
        seg = chord[: n - a]
        y[a : a + len(seg)] += 0.2 * seg
        for k in range(4):  # kick on every beat, a hat between
            b = a + int(k * beat * RATE)
            m = min(n - b, int(0.2 * RATE))
            if m <= 0:
                continue
            tt = np.arange(m) / RATE
            y[b : b + m] += np.sin(2 * np.pi * 60 * tt * (1 + 2 * np.exp(-tt * 30))) * np.exp(-tt * 12)
            h = min(n - b - int(beat * RATE / 2), int(0.05 * RATE))
            if h > 0:
                hb = b + int(beat * RATE / 2)
                y[hb : hb + h] += 0.3 * rng.normal(size=h) * np.exp(-np.arange(h) / RATE * 80)
    return y


def room_impulse(rng: np.random.Generator, rt60: float = 0.35) -> np.ndarray:
    """A small room: the direct path, a few early reflections and an exponentially decaying tail."""
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    ir = rng.normal(size=n) * np.exp(-6.9 * t / rt60) * 0.3
    ir[:int(0.005 * RATE)] = 0.0
    ir[0] = 1.0
    for d in rng.uniform(0.004, 0.03, size=4):
        ir[int(d * RATE)] += rng.uniform(0.3, 0.6) * rng.choice([-1, 1])
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def _mp3(y: np.ndarray, kbps: int = 32) -> np.ndarray:
    """MP3 at a low bit rate and back (libsndfile's LAME encoder)."""
    buf = io.BytesIO()
    level = 1.0 - (kbps - 8) / 312  # libsndfile maps compression 0..1 to 320..8 kbit/s
    with sf.SoundFile(buf, "w", RATE, 1, format="MP3", subtype="MPEG_LAYER_III", compression_level=level,
                      bitrate_mode="CONSTANT") as f:
        f.write(y)
    buf.seek(0)
    out, _ = sf.read(buf, dtype="float32")
    return out[: len(y)] if len(out) >= len(y) else np.pad(out, (0, len(y) - len(out)))


def alter(y: np.ndarray, condition: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The clip under one condition, and what was done (speed, pitch_semitones, stretch)."""
    import librosa
    from scipy.signal import butter, fftconvolve, sosfilt

    kind, _, value = condition.partition("_")
    change: dict = {}
    if kind == "speed":  # tape: played back `value` times as fast, so higher and shorter
        f = float(value)
        y = librosa.resample(y, orig_sr=RATE, target_sr=int(round(RATE / f)), res_type="soxr_hq")
        change = {"speed": f}
    elif kind == "pitch":
        y = librosa.effects.pitch_shift(y, sr=RATE, n_steps=float(value))
        change = {"pitch_semitones": float(value)}
    elif kind == "stretch":  # the tempo multiplied by `value`; the pitch stays
        y = librosa.effects.time_stretch(y, rate=float(value))
        change = {"stretch": float(value)}
    elif kind == "telephone":
        y = sosfilt(butter(6, [300, 3400], btype="bandpass", fs=RATE, output="sos"), y)
    elif kind == "reverb":
        y = fftconvolve(y, room_impulse(rng))
    elif kind == "mp3":
        y = _mp3(y)
    return np.asarray(y, dtype=np.float32), change


def build_wild_mix(out: Path, minutes: float = 5.0, seed: int = 0, folder: Path = SAMPLE,
                   snr_db: tuple[float, float] = (0.0, 15.0), conditions: tuple[str, ...] = CONDITIONS) -> dict:
    """Write the recording to `out` (OGG) and its ground truth to out.with_suffix('.json')."""
    from search_core.audio import load_audio

    rng = np.random.default_rng(seed)
    duration = float(minutes * 60)
    library, others = split(folder)
    excluded = _twins_of_library(folder, library, others)
    others = [o for o in others if o[0].stem not in excluded]
    lib_order = [library[int(i)] for i in rng.permutation(len(library))]
    dis_order = [others[int(i)] for i in rng.permutation(len(others))]
    # alternate library sound / distractor; conditions cycle over the library sounds
    plan, used = [], 0.0
    k = int(rng.integers(0, len(conditions)))
    while lib_order and dis_order:
        for pool, in_library in ((lib_order, True), (dis_order, False)):
            path, label = pool.pop()
            cond = conditions[k % len(conditions)] if in_library else str(rng.choice([c for c in conditions if c != "overlap"]))
            if in_library:
                k += 1
            y = load_audio(path, RATE).samples
            y, change = alter(y, cond, rng)
            y = y / (np.max(np.abs(y)) + 1e-12) * 0.5 * 10 ** (rng.uniform(-6.0, 0.0) / 20)
            gap = 0.0 if cond == "overlap" else float(rng.uniform(1.0, 4.0))
            plan.append((path, label, cond, change, y, in_library, gap))
            used += len(y) / RATE * (0.5 if cond == "overlap" else 1.0) + gap
        if used > duration - 20.0:
            break
    music, bed_name = bed(duration, rng)
    mix = np.zeros(int(duration * RATE), np.float32)
    level = np.full(len(mix), np.nan, np.float32)
    at = float(rng.uniform(1.0, 3.0))
    insertions, distractors = [], []
    for path, label, cond, change, y, in_library, gap in plan:
        a = int(at * RATE)
        if a + len(y) > len(mix):
            break
        mix[a : a + len(y)] += y
        snr = float(rng.uniform(*snr_db))
        bed_rms = _active_rms(y) * 10 ** (-snr / 20)
        level[a : a + len(y)] = np.where(np.isnan(level[a : a + len(y)]), bed_rms, np.minimum(level[a : a + len(y)], bed_rms))
        entry = {"start": round(at, 4), "end": round(at + len(y) / RATE, 4), "file": str(path.relative_to(folder)),
                 "name": path.stem, "label": label, "condition": cond, "snr_db": round(snr, 1), **change}
        (insertions if in_library else distractors).append(entry)
        at += len(y) / RATE * (0.5 if cond == "overlap" else 1.0) + gap
    # the bed follows the level each sound asked for (interpolated between sounds)
    known = np.flatnonzero(~np.isnan(level))
    level = np.interp(np.arange(len(mix)), known, level[known]).astype(np.float32)
    mix += music * level
    return finish_mix(out, mix, {"duration": duration, "seed": seed, "bed": bed_name, "insertions": insertions,
                                 "distractors": distractors})


_TWIN_CACHE: dict[str, set[str]] = {}


def _twins_of_library(folder: Path, library, others) -> set[str]:
    """Distractors that are the same recording as some library sound (found by the scan benchmark's
    file-against-file check): inserting one would be a true detection, not a false alarm."""
    key = str(folder)
    if key not in _TWIN_CACHE:
        from .scan import twins

        same = twins(folder)
        lib_names = {p.stem for p, _ in library}
        _TWIN_CACHE[key] = {p.stem for p, _ in others if same.get(p.stem, set()) & lib_names}
    return _TWIN_CACHE[key]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.wild_mixes", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the recording to write (.ogg); its ground truth goes beside it as .json")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    truth = build_wild_mix(Path(args.out), args.minutes, args.seed)
    for ins in sorted(truth["insertions"] + truth["distractors"], key=lambda i: i["start"]):
        kind = "LIBRARY   " if ins in truth["insertions"] else "distractor"
        print(f"{ins['start']:8.2f} - {ins['end']:8.2f}  {kind} {ins['name']} ({ins['condition']}, {ins['snr_db']} dB over the bed)")
    print(f"wrote {args.out} ({args.minutes:g} min, bed: {truth['bed']}) and {Path(args.out).with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
