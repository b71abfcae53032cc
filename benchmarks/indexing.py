"""Indexing throughput against model-only throughput on the same clips, per inference path (torch
eager, the reference; ONNX Runtime; OpenVINO bf16 where the CPU has it; ONNX Runtime's int8 graph)
and thread setting; where the time goes (the
profile); how far each path's embeddings are from torch's; and the held-out quality per path."""
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


def model_only(files, emb) -> tuple[float, np.ndarray]:
    """Seconds to embed already-decoded clips in the indexer's batch size (8): the floor; and the vectors."""
    clips = [load_audio(f, emb.sample_rate).samples for f in files]
    t = time.perf_counter()
    vectors = [emb.embed(clips[i : i + 8]) for i in range(0, len(clips), 8)]
    return time.perf_counter() - t, np.concatenate(vectors)


PATHS = ("torch", "onnx", "bf16", "int8")


def paths_for(model: str, inference) -> list[str]:
    """The inference paths measured for a model: int8 and bf16 are offered for aisfx only (PANNs'
    reasons: embedders/panns.py); bf16 where the CPU computes it natively."""
    from search_core.embedders.openvino_forward import native_bf16

    if model == "mfcc":  # numpy only: one path
        return ["torch"]
    if model != "aisfx":
        return [m for m in inference if m not in ("int8", "bf16")]
    return [m for m in inference if m != "bf16" or native_bf16()]


def bench_indexing(models, sets: dict[str, Path], workdir: Path, thread_configs, inference=PATHS) -> list[dict]:
    from search_core.library import Library
    from search_core.indexer import collect

    rows = []
    for model in models:
        for set_name, folder in sets.items():
            items, _ = collect([folder])
            files = [i.path for i in items]
            audio_s = sum(sf.info(f).duration for f in files)
            reference = None
            for mode in paths_for(model, inference):
                for torch_threads, decode_workers in thread_configs:
                    s = settings_for(model, workdir, f"idx_{model}_{set_name}_{mode}_{torch_threads}_{decode_workers}")
                    s = s.with_(torch_threads=torch_threads, decode_workers=decode_workers, inference=mode)
                    lib = Library(s)
                    used = lib.embedder.inference
                    assert used in (mode, "numpy") or mode == "auto", f"{model}: {mode} was refused (see the warning above)"
                    floor, vectors = model_only(files, lib.embedder)
                    if mode == "torch":
                        reference = vectors
                    cos = None if reference is None or mode == "torch" else np.sum(reference * vectors, axis=1)
                    t = time.perf_counter()
                    report = lib.index([folder])
                    wall = time.perf_counter() - t
                    rows.append({
                        "model": model, "inference": used, "set": set_name, "clips": len(files), "torch_threads": torch_threads,
                        "decode_workers": decode_workers, "index_s": round(wall, 1), "clips_per_s": round(len(files) / wall, 1),
                        "audio_s_per_s": round(audio_s / wall, 1), "model_only_s": round(floor, 1),
                        "vs_model_only": round(floor / wall, 3), "failed": len(report.failed),
                        "cos_to_torch_min": None if cos is None else round(float(cos.min()), 5),
                        "cos_to_torch_median": None if cos is None else round(float(np.median(cos)), 5),
                    })
                    print(f"indexing {model} {mode} {set_name} t{torch_threads}/d{decode_workers}: {rows[-1]['clips_per_s']} clips/s, "
                          f"{rows[-1]['vs_model_only']} x model-only, cosine to torch min {rows[-1]['cos_to_torch_min']}", file=sys.stderr)
    speedups(rows)
    return rows


def speedups(rows: list[dict]) -> None:
    """Each row's clips/s over the torch row of the same model, set and threads."""
    base = {(r["model"], r["set"], r["torch_threads"], r["decode_workers"]): r["clips_per_s"] for r in rows if r["inference"] == "torch"}
    for r in rows:
        b = base.get((r["model"], r["set"], r["torch_threads"], r["decode_workers"]))
        r["vs_torch"] = round(r["clips_per_s"] / b, 2) if b else None


def bench_profile(models, folder: Path, workdir: Path, inference=PATHS) -> list[dict]:
    """Where indexing's time goes, per model and path: decode (to the model's rate), cutting into
    segments plus the front end (aisfx's mel; PANNs' is inside its graph, so counted as forward),
    the forward pass, and the store's writes (timed inside a real index run of the same files)."""
    from search_core.library import Library
    from search_core.indexer import collect

    files = [i.path for i in collect([folder])[0]]
    rows = []
    for model in models:
        for mode in paths_for(model, inference):
            lib = Library(settings_for(model, workdir, f"prof_{model}_{mode}").with_(inference=mode))
            emb = lib.embedder
            used = emb.inference
            spent = {"store": 0.0}
            upsert = lib.store.upsert

            def timed_upsert(records, upsert=upsert, spent=spent):
                t = time.perf_counter()
                n = upsert(records)
                spent["store"] += time.perf_counter() - t
                return n

            lib.store.upsert = timed_upsert
            t = time.perf_counter()
            lib.index([folder])
            index_s = time.perf_counter() - t
            t = time.perf_counter()
            clips = [load_audio(f, emb.sample_rate) for f in files]
            decode = time.perf_counter() - t
            t = time.perf_counter()
            pieces = [p for c in clips for p in emb.pieces(c.samples, c.duration)[1]]
            if hasattr(emb, "blocks"):  # aisfx: the mel front end runs before the graph
                blocks = np.concatenate([emb.blocks(p) for p in pieces])
                front = time.perf_counter() - t
                t = time.perf_counter()
                emb.block_embeddings(blocks)
            else:
                front = time.perf_counter() - t
                t = time.perf_counter()
                emb.embed(pieces)
            forward = time.perf_counter() - t
            total = decode + front + forward + spent["store"]
            rows.append({"model": model, "inference": used, "files": len(files), "vectors": len(pieces),
                         "decode_s": round(decode, 2), "front_end_s": round(front, 2), "forward_s": round(forward, 2),
                         "store_write_s": round(spent["store"], 2), "index_s": round(index_s, 1),
                         "forward_share": round(forward / total, 3)})
            print(f"profile {model} {mode}: decode {decode:.1f} s, front end {front:.1f} s, forward {forward:.1f} s, "
                  f"store {spent['store']:.1f} s (index {index_s:.1f} s)", file=sys.stderr)
    return rows


def bench_quality(folder: Path, workdir: Path, inference=PATHS) -> list[dict]:
    """Leave-one-out retrieval quality (`eval`) of aisfx per inference path."""
    from search_core.evaluate import evaluate

    rows = []
    for mode in paths_for("aisfx", inference):
        r = evaluate(folder, settings_for("aisfx", workdir, f"quality_{mode}").with_(inference=mode), "aisfx")
        o = r["overall"]
        rows.append({"model": "aisfx", "inference": mode, "p@1": o["p@1"], "p@5": o["p@5"], "map": o["map"],
                     "knn_accuracy": o["knn_accuracy"], "classifier_accuracy": o["classifier_accuracy"]})
        print(f"quality aisfx {mode}: P@5 {o['p@5']}", file=sys.stderr)
    return rows
