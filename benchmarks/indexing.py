"""Indexing throughput against model-only throughput on the same clips, and thread settings."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import SAMPLE, settings_for
from search_core.audio import load_audio



def generated_set(n: int, workdir: Path) -> Path:
    """n varied clips (1-5 s, several rates and channel counts) made from the bundled sounds."""
    folder = workdir / f"generated_{n}"
    if folder.exists():
        return folder
    folder.mkdir()
    clips = sorted(SAMPLE.rglob("*.ogg"))
    rng = np.random.default_rng(0)
    for i in range(n):
        src = load_audio(clips[i % len(clips)], 22050).samples
        seconds = rng.uniform(1, 5)
        reps = int(np.ceil(seconds * 22050 / len(src)))
        y = np.tile(src, reps)[: int(seconds * 22050)] * rng.uniform(0.3, 1.0)
        y = y + rng.normal(scale=0.003, size=y.shape).astype(np.float32)  # unique content per file
        rate = [22050, 44100, 16000][i % 3]
        if rate != 22050:
            import librosa

            y = librosa.resample(y, orig_sr=22050, target_sr=rate)
        data = np.stack([y, y * 0.8], axis=1) if i % 2 else y
        sf.write(folder / f"gen_{i:04d}.{['wav', 'flac', 'ogg'][i % 3]}", data, rate)
    return folder


def model_only(files, emb) -> float:
    """Seconds to embed already-decoded clips in the indexer's batch size (8): the floor."""
    clips = [load_audio(f, emb.sample_rate).samples for f in files]
    t = time.perf_counter()
    for i in range(0, len(clips), 8):
        emb.embed(clips[i : i + 8])
    return time.perf_counter() - t


def bench_indexing(models, sets: dict[str, Path], workdir: Path, thread_configs) -> list[dict]:
    from search_core.library import Library
    from search_core.indexer import collect

    rows = []
    for model in models:
        for set_name, folder in sets.items():
            for torch_threads, decode_workers in thread_configs:
                s = settings_for(model, workdir, f"idx_{model}_{set_name}_{torch_threads}_{decode_workers}")
                s = s.with_(torch_threads=torch_threads, decode_workers=decode_workers)
                lib = Library(s)
                items, _ = collect([folder])
                files = [i.path for i in items]
                audio_s = sum(sf.info(f).duration for f in files)
                floor = model_only(files, lib.embedder)
                t = time.perf_counter()
                report = lib.index([folder])
                wall = time.perf_counter() - t
                rows.append({
                    "model": model, "set": set_name, "clips": len(files), "torch_threads": torch_threads,
                    "decode_workers": decode_workers, "index_s": round(wall, 1), "clips_per_s": round(len(files) / wall, 1),
                    "audio_s_per_s": round(audio_s / wall, 1), "model_only_s": round(floor, 1),
                    "vs_model_only": round(floor / wall, 3), "failed": len(report.failed),
                })
                print(f"indexing {model} {set_name} t{torch_threads}/d{decode_workers}: {rows[-1]['clips_per_s']} clips/s, "
                      f"{rows[-1]['vs_model_only']} x model-only", file=sys.stderr)
    return rows
