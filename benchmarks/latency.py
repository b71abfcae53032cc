"""Query latency: end to end (decode + embed + search + DataFrame) against the model's own forward time."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .common import SAMPLE, pct, query_file, settings_for
from search_core.audio import load_audio



def bench_latency(models, durations, runs, workdir: Path, library_clips: int, inference=("torch", "onnx", "bf16")) -> list[dict]:
    """Per model and inference path (benchmarks/indexing.py `paths_for`): torch, the reference, then the fast paths."""
    from search_core.service import Service

    from .indexing import paths_for

    rows = []
    for model, mode in [(m, p) for m in models for p in paths_for(m, inference)]:
        service = Service(settings_for(model, workdir, f"lat_{model}_{mode}").with_(inference=mode))
        all_files = sorted(SAMPLE.rglob("*.ogg"))
        files = all_files[:: max(1, len(all_files) // library_clips)][:library_clips]
        service.library.index(files)
        emb = service.library.embedder
        for seconds in durations:
            q = query_file(seconds, workdir)
            service.search(q, 5)  # warm-up
            e2e, fwd = [], []
            clip = load_audio(q, emb.sample_rate)
            for _ in range(runs):
                t = time.perf_counter()
                frame = service.search(q, 5)
                e2e.append(time.perf_counter() - t)
                t = time.perf_counter()
                emb.embed_one(clip.samples)
                fwd.append(time.perf_counter() - t)
            assert len(frame) == 5
            rows.append({
                "model": model, "inference": emb.inference, "query_s": seconds, "runs": runs,
                "e2e_p50_ms": round(pct(e2e, 50), 1), "e2e_p95_ms": round(pct(e2e, 95), 1),
                "forward_p50_ms": round(pct(fwd, 50), 1),
                "e2e/forward": round(pct(e2e, 50) / pct(fwd, 50), 3),
            })
            print(f"latency {model} {mode} {seconds:g}s: e2e p50 {rows[-1]['e2e_p50_ms']} ms, forward {rows[-1]['forward_p50_ms']} ms", file=sys.stderr)
    return rows
