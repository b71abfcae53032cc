"""Soundalike benchmarks, on the real code paths the app uses (no mocks).

    python -m benchmarks                 # full run (~15 min on 2 cores), table + benchmarks/results.json
    python -m benchmarks --smoke         # ~1 min: tiny sizes, checks the machinery (CI-friendly)
    python -m benchmarks --only latency indexing --models aisfx
    python -m benchmarks --only scale --scale-sizes 10000 100000 1000000

Sections:
  latency   end-to-end query (decode + embed + search + DataFrame) vs the model's own forward time
  indexing  indexer throughput vs model-only throughput on the same clips; thread settings
  scale     search in Milvus Lite at 10k/100k vectors: Store.search (Lite mirror), Milvus Lite's own
            search and numpy brute force; recall@10, insert rate, RSS, size on disk
  memory    peak RSS per model, while indexing, and for a 10-minute file (separate processes)
  scan      finding bundled clips inside long noisy recordings (benchmarks/scan.py): exact-clip
            recall/precision per threshold vs embedding alone, onset error, real-time factor, and
            10- and 60-minute recordings end to end (time, peak memory); CLI runs, model load included
  dupes     the near-duplicate finder (benchmarks/dupes.py): altered copies of sample clips among the
            others, pair recall/precision per threshold vs embedding alone; with --dupes-scale 10000,
            its time on a library of 10k generated files (indexing them takes ~40 min on 2 cores)
  wild      (only with --only wild) scan on recordings of the wild (benchmarks/wild.py): a library
            part of the bundled set, its sounds altered (speed, pitch, stretch, telephone, reverb,
            mp3, overlap) 0-15 dB over game music between sounds NOT in the library; recall per
            condition, precision, false detections per hour; threshold tuned on other seeds
  restart   a reopened Lite library's first search (benchmarks/restart.py): open + first search with
            the saved search mirror, and without it (every vector read back from Milvus Lite)
  map       the library map (benchmarks/libmap.py): how well layouts keep category neighbourhoods on
            the bundled set (PCA, t-SNE, UMAP when installed), and at 10k generated sounds the layout's
            time, its size on the wire, and in Chromium opening the tab, hover and click-to-player times
  load      32 clients searching at once over HTTP against the running app (benchmarks/load.py):
            status codes (no 5xx), searches/s, p50/p95 latency as the clients see it
  soak      (only with --only soak) 1,000 searches with distinct uploads through the REST and Gradio
            APIs of the running app: the visitor-file folder and RSS over time (benchmarks/soak.py);
            the run exits 1 when the folder ends over its bound or RSS grew more than 10 %
  server    (only with --only server) 1M x 512 vectors on a real Milvus server (benchmarks/server.py):
            insert rate, index build, load, restart, top-10 p50/p95 and recall@10 against exact;
            --server-size sets N, --server-uri uses a running server instead of starting one

`--only` runs merge their sections into an existing results.json.

PANNs Cnn14 runs with random weights built from the real architecture (the released checkpoint
cannot be downloaded here); its speed and memory do not depend on the weights' values.
Numbers are medians of repeated runs on a shared, noisy machine: read the ratios first.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
sys.path.insert(0, str(REPO))

from search_core.audio import load_audio  # noqa: E402
from search_core.settings import Settings  # noqa: E402


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def panns_checkpoint(workdir: Path) -> Path:
    """A random-weights Cnn14 checkpoint in the released layout (speed/memory only)."""
    import torch

    from search_core.embedders.panns import build_cnn14

    path = workdir / "Cnn14_random.pth"
    if not path.exists():
        torch.save({"model": build_cnn14().state_dict()}, path)
    return path


def settings_for(model: str, workdir: Path, data: str = "data") -> Settings:
    s = Settings(data_dir=workdir / data, model=model, allow_download=False)
    if model == "panns-cnn14":
        s = s.with_(panns_checkpoint=panns_checkpoint(workdir))
    return s


def query_file(seconds: float, workdir: Path) -> Path:
    """A realistic query: bundled clips played one after another, cut to length, 44.1 kHz stereo wav."""
    path = workdir / f"query_{seconds:g}s.wav"
    if not path.exists():
        clips = sorted(SAMPLE.rglob("*.ogg"))
        parts, total = [], 0
        rng = np.random.default_rng(int(seconds))
        while total < seconds * 44100:
            c = load_audio(clips[rng.integers(len(clips))], 44100).samples
            parts.append(c)
            total += len(c)
        y = np.concatenate(parts)[: int(seconds * 44100)]
        sf.write(path, np.stack([y, y], axis=1), 44100)
    return path


# -- 1. query latency ------------------------------------------------------------------------------
def bench_latency(models, durations, runs, workdir: Path, library_clips: int) -> list[dict]:
    from search_core.service import Service

    rows = []
    for model in models:
        service = Service(settings_for(model, workdir, f"lat_{model}"))
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
                "model": model, "query_s": seconds, "runs": runs,
                "e2e_p50_ms": round(pct(e2e, 50), 1), "e2e_p95_ms": round(pct(e2e, 95), 1),
                "forward_p50_ms": round(pct(fwd, 50), 1),
                "e2e/forward": round(pct(e2e, 50) / pct(fwd, 50), 3),
            })
            print(f"latency {model} {seconds:g}s: e2e p50 {rows[-1]['e2e_p50_ms']} ms, forward {rows[-1]['forward_p50_ms']} ms", file=sys.stderr)
    return rows


# -- 2. indexing throughput ------------------------------------------------------------------------
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


# -- 3. search at scale ----------------------------------------------------------------------------
def bench_scale(sizes, dims, queries, workdir: Path) -> list[dict]:
    from search_core.store import Record, Store

    rows = []
    for dim in dims:
        for n in sizes:
            rng = np.random.default_rng(n + dim)
            x = rng.normal(size=(n, dim)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            db = workdir / f"scale_{dim}_{n}" / "s.db"
            store = Store(str(db), "bench", "synthetic", dim)
            t = time.perf_counter()
            now = time.time()
            for start in range(0, n, 2000):
                store.upsert([Record(f"v{i}", x[i], f"/lib/{i}.wav", f"v{i}", f"l{i % 16}", 1.0 + i % 9, 44100, now)
                              for i in range(start, min(n, start + 2000))])
            insert_s = time.perf_counter() - t
            qs = x[rng.integers(0, n, queries)] + rng.normal(scale=0.05, size=(queries, dim)).astype(np.float32)
            t = time.perf_counter()
            store.search(qs[0], 10)  # loads the mirror (once per process)
            mirror_load_s = time.perf_counter() - t
            exact, ours, lite, brute, recall_ours, recall_lite = [], [], [], [], [], []
            for q in qs:
                t = time.perf_counter()
                scores = x @ (q / np.linalg.norm(q))
                top = np.argpartition(-scores, 10)[:10]
                top = top[np.argsort(-scores[top])]
                brute.append(time.perf_counter() - t)
                truth = {f"v{i}" for i in top}
                t = time.perf_counter()
                hits = store.search(q, 10)
                ours.append(time.perf_counter() - t)
                recall_ours.append(len(truth & {h.id for h in hits}) / 10)
                t = time.perf_counter()
                res = store.client.search("bench", data=[q.tolist()], limit=10, output_fields=["path", "name", "label", "duration"],
                                          search_params={"metric_type": "COSINE"})
                lite.append(time.perf_counter() - t)
                recall_lite.append(len(truth & {h["id"] for h in res[0]}) / 10)
            rows.append({
                "dim": dim, "vectors": n, "insert_per_s": round(n / insert_s), "store_search_p50_ms": round(pct(ours, 50), 1),
                "store_search_p95_ms": round(pct(ours, 95), 1), "lite_native_p50_ms": round(pct(lite, 50), 1),
                "numpy_p50_ms": round(pct(brute, 50), 1), "store/numpy": round(pct(ours, 50) / pct(brute, 50), 2),
                "lite_native/numpy": round(pct(lite, 50) / pct(brute, 50), 1), "recall@10": round(float(np.mean(recall_ours)), 4),
                "lite_native_recall@10": round(float(np.mean(recall_lite)), 4), "mirror_load_s": round(mirror_load_s, 1),
                "rss_mb": round(current_rss_mb()), "disk_mb": round(du_mb(db.parent), 1),
            })
            print(f"scale {dim}-d {n}: ours {rows[-1]['store_search_p50_ms']} ms, lite {rows[-1]['lite_native_p50_ms']} ms, "
                  f"numpy {rows[-1]['numpy_p50_ms']} ms, insert {rows[-1]['insert_per_s']}/s", file=sys.stderr)
            store.drop()
            Store.close_all()
            del x
    return rows


# -- 4. memory (each in a fresh process, so peaks do not mix) ---------------------------------------
MEMORY_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
from benchmarks.run import settings_for, query_file
from pathlib import Path
from search_core.library import Library
from search_core.audio import load_audio
work = Path({work!r}); what = {what!r}; model = {model!r}
def peak():  # VmHWM: this process's own peak (ru_maxrss would inherit the parent's across fork/exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
out = {{"model": model, "what": what}}
lib = Library(settings_for(model, work, "mem_" + what + "_" + model))
out["loaded_mb"] = round(peak())
if what == "index":
    lib.index([{sample!r}])
elif what == "long":
    import numpy as np, soundfile as sf
    p = work / "long_10min.wav"
    if not p.exists():
        base = load_audio(query_file(30, work), 44100).samples
        sf.write(p, np.tile(base, 20), 44100)
    t = time.perf_counter()
    clip = load_audio(p, lib.embedder.sample_rate, max_seconds=700)
    lib.embedder.embed_one(clip.samples)
    out["seconds"] = round(time.perf_counter() - t, 1)
else:
    lib.embedder.embed_one(load_audio(query_file(10, work), lib.embedder.sample_rate).samples)
out["peak_mb"] = round(peak())
print(json.dumps(out))
"""


def bench_memory(models, workdir: Path, long_file: bool) -> list[dict]:
    rows = []
    for model in models:
        for what in ["model", "index"] + (["long"] if long_file else []):
            code = MEMORY_SCRIPT.format(repo=str(REPO), work=str(workdir), what=what, model=model, sample=str(SAMPLE))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                rows.append({"model": model, "what": what, "error": r.stderr.strip().splitlines()[-1][:200]})
                continue
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(f"memory {model} {what}: {rows[-1]}", file=sys.stderr)
    return rows


def table(title: str, rows: list[dict]) -> str:
    if not rows:
        return ""
    frame = pd.DataFrame(rows).fillna("")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in frame.itertuples(index=False)]
    return f"\n## {title}\n\n" + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that everything runs (~1 min)")
    ap.add_argument("--only", nargs="+", choices=["latency", "indexing", "scale", "memory", "scan", "wild", "dupes", "restart", "map", "load", "soak", "server"],
                    help="soak is only run when named here (it takes ~5 min and fails the run when its checks fail)")
    ap.add_argument("--models", nargs="+", default=["aisfx", "panns-cnn14", "mfcc"])
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results.json"))
    ap.add_argument("--scale-sizes", nargs="+", type=int, default=[10_000, 100_000],
                    help="vector counts for the scale section (1000000 works but inserting it into Lite takes 10-30 min per dim)")
    ap.add_argument("--restart-sizes", nargs="+", type=int, default=[100_000], help="library sizes (512-d) of the restart section")
    ap.add_argument("--dupes-scale", nargs="*", type=int, default=[], help="generated library sizes to time dupes on (e.g. 10000)")
    ap.add_argument("--map-sizes", nargs="+", type=int, default=[10_000], help="generated library sizes of the map section")
    ap.add_argument("--soak-searches", type=int, default=1000, help="searches of the soak section")
    ap.add_argument("--server-size", type=int, default=1_000_000, help="vectors (512-d) of the server section")
    ap.add_argument("--server-uri", help="run the server section on this Milvus server instead of starting one")
    ap.add_argument("--workdir", help="keep generated files here (default: a temp dir)")
    args = ap.parse_args(argv)
    sections = args.only or ["latency", "indexing", "scale", "memory", "scan", "dupes", "restart", "map", "load"]
    smoke = args.smoke
    models = ["mfcc"] if smoke else args.models
    tmp = tempfile.TemporaryDirectory(prefix="soundalike-bench-")
    work = Path(args.workdir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "smoke": smoke, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if "latency" in sections:
        result["latency"] = bench_latency(models, [1, 5] if smoke else [1, 5, 10, 30], 3 if smoke else 20, work, 10 if smoke else 60)
    if "indexing" in sections:
        sets = {"generated_20": generated_set(20, work)} if smoke else {"sample_data": SAMPLE, "generated_500": generated_set(500, work)}
        configs = [(0, 1)]  # the defaults: torch picks its threads (2 here), one decode worker
        result["indexing"] = bench_indexing(models, sets, work, configs)
        if not smoke and "aisfx" in models:  # thread settings for 2 cores, on the sample set
            result["indexing"] += bench_indexing(["aisfx"], {"sample_data": SAMPLE}, work, [(1, 1), (1, 2), (2, 1), (2, 2)])
    if "scale" in sections:
        result["scale"] = bench_scale([2000] if smoke else args.scale_sizes, [512] if smoke else [512, 2048], 5 if smoke else 30, work)
    if "memory" in sections:
        result["memory"] = bench_memory(models, work, long_file=not smoke)
    if "scan" in sections:
        from .scan import bench_scan

        result["scan"] = bench_scan(work, "mfcc" if smoke else "aisfx", dict(os.environ), smoke, () if smoke else (10.0, 60.0))
    if "wild" in sections:
        from .wild import bench_wild

        result["wild"] = bench_wild(work, "mfcc" if smoke else "aisfx", dict(os.environ), smoke)
    if "dupes" in sections:
        from .dupes import bench_dupes

        result["dupes"] = bench_dupes(work, "mfcc" if smoke else "aisfx", smoke, () if smoke else tuple(args.dupes_scale))
    if "restart" in sections:
        from .restart import bench_restart

        result["restart"] = bench_restart(work, (2000,) if smoke else tuple(args.restart_sizes))
    if "map" in sections:
        from .libmap import bench_map

        result["map"] = bench_map(work, "mfcc" if smoke else "aisfx", smoke, (300,) if smoke else tuple(args.map_sizes))
    if "load" in sections:
        from .load import bench_load

        result["load"] = [bench_load(work, "mfcc" if smoke else "aisfx", clients=8 if smoke else 32, searches=24 if smoke else 320)]
    if "soak" in sections:
        from .soak import bench_soak

        result["soak"] = bench_soak(work, "mfcc" if smoke else "aisfx", searches=40 if smoke else args.soak_searches,
                                    every=20 if smoke else 200)
    if "server" in sections:
        from .server import bench_server

        result["server"] = bench_server(work, 2000 if smoke else args.server_size, 20 if smoke else 200, uri=args.server_uri)
    text = "# Soundalike benchmarks" + "".join(table(k, result[k]) for k in ("latency", "indexing", "scale", "memory", "restart", "load", "server") if k in result)
    if "scan" in result:
        from .scan import scan_tables

        text += "".join(table(title, rows) for title, rows in scan_tables(result["scan"]))
    if "wild" in result:
        from .wild import wild_tables

        text += "".join(table(title, rows) for title, rows in wild_tables(result["wild"]))
    if "dupes" in result:
        from .dupes import dupes_tables

        text += "".join(table(title, rows) for title, rows in dupes_tables(result["dupes"]))
    if "map" in result:
        from .libmap import map_tables

        text += "".join(table(title, rows) for title, rows in map_tables(result["map"]))
    if "soak" in result:
        from .soak import soak_tables

        text += "".join(table(title, rows) for title, rows in soak_tables(result["soak"]))
    print(text)
    out = Path(args.json)
    if args.only and not smoke and out.exists():  # a partial run updates its sections, keeps the others
        merged = json.loads(out.read_text())
        merged.update({k: v for k, v in result.items() if k in sections or k == "machine"})
        merged.setdefault("updated", {}).update({k: result["started"] for k in sections})
        result = merged
    out.write_text(json.dumps(result, indent=2))
    print(f"\n(JSON: {args.json})")
    tmp.cleanup()
    return 0 if result.get("soak", {}).get("passed", True) else 1
