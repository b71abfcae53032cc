"""Long test recordings built from the bundled sample set, with the ground truth beside them.

Clips of sample_data/ are inserted at known, non-overlapping times over a noise bed (white + brown
noise + 50 Hz mains hum with harmonics), each clip 14-38 dB above the bed around it, with a random
gain of -6..0 dB; the whole recording is encoded as OGG Vorbis (44.1 kHz mono).

    python -m benchmarks.mixes OUT.ogg --minutes 3 --clips 8 [--seed 0]

writes OUT.ogg and OUT.json ({"duration", "insertions": [{"start", "end", "file", "name", "label"}]}).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import REPO, SAMPLE
RATE = 44100


def sample_clips(folder: Path = SAMPLE) -> list[tuple[Path, str]]:
    with (folder / "manifest.csv").open(newline="") as f:
        return [(folder / row["file"], row["label"]) for row in csv.DictReader(f)]


def _active_rms(y: np.ndarray) -> float:
    """RMS over the loud part of a clip (its frames within 30 dB of its loudest)."""
    n = 1024
    frames = y[: len(y) // n * n].reshape(-1, n) if len(y) >= n else y.reshape(1, -1)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-20)
    loud = rms[rms >= rms.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(loud**2)))


def noise_bed(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    white = rng.normal(size=n)
    brown = np.cumsum(rng.normal(size=n))
    brown -= np.convolve(brown, np.ones(4410) / 4410, mode="same")  # keep the random walk from drifting off
    brown /= np.std(brown) + 1e-12
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.28)) / k for k in (1, 2, 3, 5))
    bed = 0.5 * white / np.std(white) + 0.8 * brown + 0.6 * hum / np.std(hum)
    return (bed / np.sqrt(np.mean(bed**2))).astype(np.float32)  # unit RMS


def write_ogg(path: Path, y: np.ndarray, rate: int = RATE) -> None:
    """OGG Vorbis, written a second at a time: one large write crashes libsndfile's encoder (seen here)."""
    with sf.SoundFile(str(path), "w", rate, 1, format="OGG", subtype="VORBIS") as f:
        for i in range(0, len(y), rate):
            f.write(y[i : i + rate])


def build_mix(out: Path, minutes: float = 3.0, clips: int = 8, seed: int = 0, folder: Path = SAMPLE,
              min_gap: float = 1.0, snr_db: tuple[float, float] = (14.0, 38.0)) -> dict:
    """Write the mix to `out` (OGG Vorbis) and its ground truth to out.with_suffix('.json')."""
    from search_core.audio import load_audio

    rng = np.random.default_rng(seed)
    duration = float(minutes * 60)
    pool = sample_clips(folder)
    order = rng.permutation(len(pool))
    chosen, total = [], 0.0
    for i in order:
        path, label = pool[int(i)]
        y = load_audio(path, RATE).samples
        if total + len(y) / RATE + min_gap > duration * 0.8:
            continue
        chosen.append((path, label, y))
        total += len(y) / RATE + min_gap
        if len(chosen) == clips:
            break
    if len(chosen) < clips:
        raise ValueError(f"cannot fit {clips} clips into {minutes} min")
    # random non-overlapping starts: spread the spare time randomly between the clips
    spare = duration - sum(len(y) / RATE for _, _, y in chosen) - min_gap * (len(chosen) + 1)
    cuts = np.sort(rng.uniform(0, spare, size=len(chosen)))
    gaps = np.diff(np.concatenate([[0.0], cuts]))
    mix = np.zeros(int(duration * RATE), dtype=np.float32)
    bed_level = np.zeros_like(mix)
    at = min_gap
    insertions = []
    centres, levels = [], []
    for (path, label, y), gap in zip(chosen, gaps):
        at += gap
        gain = 10 ** (rng.uniform(-6.0, 0.0) / 20)
        y = y / (np.max(np.abs(y)) + 1e-12) * 0.7 * gain  # peak-normalised, then the random gain
        a = int(at * RATE)
        mix[a : a + len(y)] += y
        snr = rng.uniform(*snr_db)
        centres.append(at + len(y) / RATE / 2)
        levels.append(_active_rms(y) * 10 ** (-snr / 20))
        insertions.append({"start": round(at, 4), "end": round(at + len(y) / RATE, 4),
                           "file": str(path.relative_to(folder)), "name": path.stem, "label": label,
                           "snr_db": round(snr, 1)})
        at += len(y) / RATE + min_gap
    # the bed's level follows each clip's SNR around it (interpolated between clips)
    t = np.arange(len(mix)) / RATE
    bed_level = np.interp(t, centres, levels).astype(np.float32)
    mix += noise_bed(duration, rng) * bed_level
    return finish_mix(out, mix, {"duration": duration, "seed": seed, "insertions": insertions})


def finish_mix(out: Path, mix: np.ndarray, truth: dict) -> dict:
    """Keep the mix under full scale, write it (OGG Vorbis) and its truth beside it (.json)."""
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:
        mix *= 0.99 / peak
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_ogg(out, mix)
    out.with_suffix(".json").write_text(json.dumps(truth, indent=1))
    return truth


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.mixes", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the recording to write (.ogg); its ground truth goes beside it as .json")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    truth = build_mix(Path(args.out), args.minutes, args.clips, args.seed)
    for ins in truth["insertions"]:
        print(f"{ins['start']:8.2f} - {ins['end']:8.2f}  {ins['name']} ({ins['label']}, {ins['snr_db']} dB over the bed)")
    print(f"wrote {args.out} ({args.minutes:g} min) and {Path(args.out).with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
